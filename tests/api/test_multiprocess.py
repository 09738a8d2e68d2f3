"""Two API processes (`lore serve`) on one PostgreSQL and one Redis share one caller's rate-limit
bucket, one exact-match answer cache and login sessions.

Each process has its own embedded vector store (there is no Qdrant server here): only the first
holds the corpus's chunks, so an answer the second gives can only come from the shared cache.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.redis]
REPO = Path(__file__).resolve().parents[2]
BURST = 6
JWT_KEYS = '{"k1": "' + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH" + '"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lore_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(data_dir)
    env.update({f"LORE_{k.upper()}": v for k, v in settings.items()})
    return env


def lore(*args: str, env: dict[str, str], stdin: str | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def shared(fresh_postgres_url: str, redis_url: str) -> dict[str, str]:
    # Redis database 14: apart from the other Redis tests, which may run at the same time on theirs.
    return {
        # Production: no bootstrap admin (two processes would race to create it), shared JWT keys.
        "environment": "production",
        "database__url": fresh_postgres_url,
        "cache__redis_url": redis_url.rsplit("/", 1)[0] + "/14",
        "rate_limit__query_burst": str(BURST),
        "rate_limit__query_per_minute": "0.001",
        "llm__max_tokens": "12",
        # Each run's question carries a random tag no document mentions: the cache is under test here.
        "answer__refuse_unmentioned": "false",
        # The exact-match cache is under test; a semantic hit on an earlier run's question would hide it.
        "cache__semantic": "false",
        "auth__jwt_keys": JWT_KEYS,
    }


@pytest.fixture
def servers(tmp_path: Path, shared: dict[str, str]) -> Iterator[list[str]]:
    """Two `lore serve` processes; only the first has the corpus's chunks in its vector store."""
    lore("db", "upgrade", env=lore_env(tmp_path / "a", **shared))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text(
        "# Tides\n\nThe harbour of Lorport has two high tides a day. The ferry leaves at high tide only.\n"
    )
    lore("ingest", str(docs), "--corpus", "c", env=lore_env(tmp_path / "a", **shared))
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"serve-{i}.log").open("w") for i in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=lore_env(tmp_path / name, **shared),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for name, port, log in zip("ab", ports, logs, strict=True)
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 120
        for base, process in zip(bases, processes, strict=True):
            while True:
                assert process.poll() is None, (
                    tmp_path / f"serve-{processes.index(process)}.log"
                ).read_text()
                assert time.monotonic() < deadline, "the API did not start"
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        for log in logs:
            log.close()


def test_two_api_processes_share_the_rate_limit_the_answer_cache_and_sessions(
    servers: list[str], shared: dict[str, str], tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    settings = Settings(data_dir=tmp_path / "keys", database={"url": shared["database__url"]})
    key = asyncio.run(user_key(settings, "alice", role="reader", grants=("c",)))
    auth = {"Authorization": f"Bearer {key}"}
    a, b = servers
    # A question no other run asks (the Redis database outlives the PostgreSQL one).
    question = f"When does the ferry leave Lorport? ({uuid.uuid4().hex[:8]})"

    # Given an answer process a generated from its chunks
    first = httpx.post(f"{a}/v1/query", json={"question": question, "corpus": "c"}, headers=auth, timeout=120)
    assert first.status_code == 200, first.text
    assert first.json()["cached"] is False
    assert first.json()["refused"] is False

    # when process b, which holds no chunk at all, is asked the same
    second = httpx.post(
        f"{b}/v1/query", json={"question": question, "corpus": "c"}, headers=auth, timeout=120
    )

    # then it serves the same answer from the shared cache
    assert second.status_code == 200, second.text
    assert second.json()["cached"] is True
    assert second.json()["cache_kind"] == "exact"
    assert second.json()["answer"] == first.json()["answer"]

    # and the caller's one bucket empties across both: BURST requests in all, then 429 on either
    statuses = [
        httpx.get(f"{base}/v1/corpora", headers=auth, timeout=30).status_code for base in (a, b) * BURST
    ]
    allowed = BURST - 2  # the two questions took a token each
    assert statuses == [200] * allowed + [429] * (2 * BURST - allowed)

    # and a login at one process is a session at both: its tokens work, refresh and log out anywhere
    lore(
        "users",
        "create",
        "bob",
        "--role",
        "reader",
        "--password-stdin",
        env=lore_env(tmp_path / "users", **shared),
        stdin="correct horse battery staple",
    )
    login = httpx.post(
        f"{a}/v1/auth/token", data={"username": "bob", "password": "correct horse battery staple"}, timeout=30
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    me = httpx.get(
        f"{b}/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30
    )
    assert me.status_code == 200 and me.json()["username"] == "bob"
    refreshed = httpx.post(
        f"{b}/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=30
    )
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    access = {"Authorization": f"Bearer {pair['access_token']}"}
    assert httpx.post(f"{a}/v1/auth/logout", headers=access, timeout=30).status_code == 204
    assert httpx.get(f"{b}/v1/auth/me", headers=access, timeout=30).status_code == 401
    again = httpx.post(f"{b}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}, timeout=30)
    assert again.status_code == 401
