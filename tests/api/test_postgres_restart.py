"""PostgreSQL restarted under load: requests fail as 503 with Retry-After (never 500), and the pool
recovers without restarting Lore; an upload after the restart is ingested.

The test owns its PostgreSQL (a cluster of its own on a free port, see tests/restartable.py): the
shared one must stay up for every other test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.fakes import ScriptedLLM
from tests.restartable import postgres_server
from tests.served import served_corpus

pytestmark = [pytest.mark.models, pytest.mark.postgres]

FINAL_STATES = {"succeeded", "failed", "cancelled", "interrupted"}


async def poll(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        await asyncio.sleep(0.05)


async def test_a_postgres_restart_under_load_is_503s_then_service_without_a_lore_restart(
    tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    with postgres_server() as postgres:
        settings = Settings(
            data_dir=tmp_path / "lore",
            database={"url": postgres.url},
            # Every request reads its key and grants from the database; no answer comes from a cache.
            auth={"credential_cache_s": 0},
            cache={"semantic": False},
            rate_limit={"enabled": False},
        )
        # user_key migrates the new database first, as `lore db upgrade` does
        reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
        admin = await user_key(settings, "root", role="admin")
        async with served_corpus(settings, docs, reader) as (app, client):
            app.state.resources._llm = ScriptedLLM("The Alpha widget is blue [1].")
            replies: list[httpx.Response] = []
            stop = asyncio.Event()

            async def load() -> None:
                n = 0
                while not stop.is_set():
                    n += 1  # a new question each time: the exact cache must not answer it
                    question = {"question": f"What colour is the Alpha widget? ({n})"}
                    replies.append(await client.post("/v1/query", json=question))

            loader = asyncio.create_task(load())
            try:
                # Given queries answered from a working database
                await poll(
                    lambda: sum(r.status_code == 200 for r in replies) >= 3, timeout_s=60, what="3 answers"
                )
                # when PostgreSQL stops (fast: sessions are ended mid-statement), then starts again
                await asyncio.to_thread(postgres.stop)
                stopped_at = len(replies)
                await poll(
                    lambda: sum(r.status_code == 503 for r in replies[stopped_at:]) >= 3,
                    timeout_s=60,
                    what="3 refusals while the database is down",
                )
                await asyncio.to_thread(postgres.start)
                started_at = len(replies)
                await poll(
                    lambda: any(r.status_code == 200 for r in replies[started_at:]),
                    timeout_s=60,
                    what="an answer after the database came back",
                )
            finally:
                stop.set()
                await loader

            # then every reply was an answer or a clean 503 with Retry-After, never a 500
            statuses = [r.status_code for r in replies]
            assert set(statuses) <= {200, 503}, statuses
            refused = [r for r in replies if r.status_code == 503]
            assert refused, statuses
            for reply in refused:
                assert reply.json()["error"]["code"] == "backend_unavailable", reply.text
                assert int(reply.headers["Retry-After"]) >= 1
                assert str(postgres.port) not in reply.text
            assert statuses[-1] == 200
            assert (await client.get("/ready")).json()["checks"]["database"] == "ok"

            # and an upload after the restart is ingested by the same Lore
            headers = {"Authorization": f"Bearer {admin}"}
            created = await client.post("/v1/corpora", json={"name": "after"}, headers=headers)
            assert created.status_code == 201, created.text
            upload = await client.post(
                f"/v1/corpora/{created.json()['id']}/documents",
                files=[("files", ("gadgets.md", b"# Gadgets\n\nThe Beta gadget is green.\n"))],
                headers=headers,
            )
            assert upload.status_code == 202, upload.text
            job_id = upload.json()["id"]
            job: dict[str, Any] = {}

            async def job_finished() -> bool:
                nonlocal job
                job = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
                return job["state"] in FINAL_STATES

            deadline = time.monotonic() + 60
            while not await job_finished():
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.1)
            assert job["state"] == "succeeded", job
