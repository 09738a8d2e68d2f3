"""Real Redis and PostgreSQL servers a test owns: on a free port, stopped and started again mid-test.

The shared servers of the test run (LORE_TEST_REDIS_URL, LORE_TEST_POSTGRES_URL) must stay up for
every other test, so outage tests start their own. PostgreSQL's tools refuse to run as root: they
run as the ``postgres`` user then, on a data dir it owns.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.served import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _wait_for_port(port: int, *, up: bool, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            answering = True
        except OSError:
            answering = False
        if answering == up:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still {'closed' if up else 'open'} after {timeout_s} s")
        time.sleep(0.05)


class RedisServer:
    """``redis-server`` on ``port`` without persistence: a restart starts it empty."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        with self.log.open("a") as out:
            self._process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, up=True)

    def stop(self) -> None:
        """Kill the server (no clean shutdown) and wait until its port refuses connections."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
        _wait_for_port(self.port, up=False)


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` on a free port, killed at the end."""
    server = RedisServer(free_port(), directory / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PostgresServer:
    """A PostgreSQL cluster of its own (trust auth) on ``port``, with a database ``lore``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/lore"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres")
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lore")

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", *args
        )

    def start(self) -> None:
        self._ctl("start")
        self.running = True
        _wait_for_port(self.port, up=True)

    def stop(self) -> None:
        """Fast shutdown: open connections are ended, in-flight statements fail."""
        self._ctl("stop", "-m", "fast")
        self.running = False
        _wait_for_port(self.port, up=False)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """An initialised, started :class:`PostgresServer` on a free port, stopped and removed at the end.

    Its directory is a new one under the system temp dir, not pytest's: that one is private to root,
    and the ``postgres`` user must reach the data dir.
    """
    root = Path(tempfile.mkdtemp(prefix="lore-pg-"))
    server = PostgresServer(root, free_port())
    try:
        server.init()
        yield server
    finally:
        if server.running:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
