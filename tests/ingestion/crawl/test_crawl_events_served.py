"""A crawl started through a real `lore serve` with the queue configured runs on a real `lore worker`,
and `GET /v1/jobs/{id}/events` follows it live; a client that reconnects with Last-Event-ID gets
the rest, none twice. PostgreSQL and Redis are shared; each process has its own embedded store."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.settings import DatabaseSettings, Settings
from tests.served import lore_env, served_process, worker_process

from .conftest import Site

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
PAGES = 40


async def events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The Server-Sent Events of ``response``: {"event", "id", "data"} each (comments skipped)."""
    event: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[field] = json.loads(value) if field == "data" else value


async def worker_of(url: str, job_id: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("select worker from ingestion_jobs where id = :id"), {"id": job_id}
            )
            return str(rows.scalar_one())
    finally:
        await engine.dispose()


async def test_a_crawl_through_the_api_runs_on_a_worker_and_its_events_resume_without_repeats(
    tmp_path: Path, site: Site, fresh_postgres_url: str, redis_url: str, user_key: Callable[..., Any]
) -> None:
    links = [f"/p{i}" for i in range(PAGES)]
    site.pages["/"] = site.html("Home", *links)
    for i, link in enumerate(links):
        # Slow enough that the crawl is still going when the first client goes away.
        site.pages[link] = site.html(f"Page {i}", body=f"Page {i} tells about gadget {i}.", delay=0.15)
    shared = {
        "database__url": fresh_postgres_url,
        "queue__redis_url": redis_url,
        "queue__name": f"lore:test:{uuid.uuid4().hex}",
        "ingestion__crawl__per_host_delay_s": "0",
        "ingestion__crawl__per_host_concurrency": "2",
    }
    admin = await user_key(
        Settings(data_dir=tmp_path / "keys", database=DatabaseSettings(url=fresh_postgres_url)),
        "admin",
        role="admin",
    )
    with (
        worker_process(lore_env(tmp_path / "worker", **shared), tmp_path / "worker.log") as worker,
        served_process(lore_env(tmp_path / "serve", **shared), tmp_path / "serve.log") as base,
    ):
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=120
        ) as client:
            corpus = (await client.post("/v1/corpora", json={"name": "web"})).json()
            reply = await client.post(
                f"/v1/corpora/{corpus['id']}/crawls",
                json={"urls": [f"http://127.0.0.1:{site.port}/"], "allow_hosts": ["127.0.0.1"]},
            )
            assert reply.status_code == 202, reply.text
            job_id = reply.json()["id"]
            assert reply.json()["state"] == "queued"

            # A first client follows the job for a few documents, then goes away.
            first: list[dict[str, Any]] = []
            async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for event in events(stream):
                    first.append(event)
                    if sum(e["event"] == "document" for e in first) == 5:
                        break
            assert first[0]["event"] == "snapshot"
            seen = [int(e["id"]) for e in first if e["event"] == "document"]
            assert seen == [1, 2, 3, 4, 5]

            # A second one resumes after the last document it saw, to the end.
            rest: list[dict[str, Any]] = []
            async with client.stream(
                "GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(seen[-1])}
            ) as stream:
                async for event in events(stream):
                    rest.append(event)
            documents = [e for e in rest if e["event"] == "document"]
            assert rest[0]["event"] == "snapshot" and rest[-1]["event"] == "end"
            assert [int(e["id"]) for e in documents] == list(range(6, PAGES + 2))
            assert {e["data"]["status"] for e in documents} == {"new"}
            assert any(e["event"] == "progress" for e in rest)
            end = rest[-1]["data"]
            assert (end["state"], end["kind"], end["documents_new"]) == ("succeeded", "crawl", PAGES + 1)
            assert (await client.get(f"/v1/jobs/{job_id}")).json()["state"] == "succeeded"
        # It ran on the worker, not in the server.
        assert await worker_of(fresh_postgres_url, job_id) == f"{socket.gethostname()}:{worker.pid}"
