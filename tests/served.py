"""The real app serving a small ingested corpus, for API tests; a real `lore serve` process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from core.settings import Settings


@asynccontextmanager
async def served_corpus(
    settings: Settings, docs: Path, key: str, *, corpus: str = "handbook"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """``docs`` ingested into ``corpus``, the app running on ``settings`` (its lifespan included),
    and an httpx client to it sending ``key``: gives (app, client)."""
    from api.app import create_app
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus=corpus)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://lore.test",
            timeout=120,
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield app, client


REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lore_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without its LORE_ settings, on ``data_dir``, with ``settings`` as LORE_ names
    (``llm__max_tokens="16"`` -> LORE_LLM__MAX_TOKENS)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env["LORE_DATA_DIR"] = str(data_dir)
    env.update({f"LORE_{k.upper()}": v for k, v in settings.items()})
    return env


@contextmanager
def served_process(env: dict[str, str], log: Path, *, timeout_s: float = 120) -> Iterator[str]:
    """A real `lore serve` process on a free port with ``env`` (output to ``log``), once it answers
    /health: gives its base URL."""
    with serve_process(env, log, timeout_s=timeout_s) as (_, base):
        yield base


@contextmanager
def serve_process(
    env: dict[str, str], log: Path, *, timeout_s: float = 120, port: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """:func:`served_process`, giving the process too (to kill it) and taking a ``port`` (to start
    another on the same address); the log is appended to."""
    import time

    port = port or free_port()
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"lore serve did not start: {log.read_text()}"
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            yield process, base
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `lore worker` process with ``env`` (output to ``log``), stopped with SIGTERM at the end.
    It needs no wait to start: jobs enqueued meanwhile wait on the queue for it."""
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
