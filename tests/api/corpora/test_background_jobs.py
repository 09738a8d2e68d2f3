"""Jobs started through the API: they run beside the server, stop on cancel, and end at shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.job_runner import JobRunner
from core.db import migrate
from core.db.engine import create_engine, session_factory
from core.db.models import CorpusRow, IngestionJobRow
from core.errors import InvalidInputError
from core.indexing import corpus_collections

from .conftest import Lore, api_settings, running_lore

pytestmark = pytest.mark.models


def many_files(n: int) -> list[tuple[str, bytes]]:
    return [
        (f"note-{i:02}.md", f"# Note {i}\n\nFact number {i} is about widgets.\n".encode()) for i in range(n)
    ]


async def test_an_upload_job_can_be_cancelled_while_it_runs(lore: Lore, slow_embedding: float) -> None:
    corpus_id = await lore.new_corpus("cancel-running")
    accepted = (await lore.upload(corpus_id, many_files(20))).json()
    await lore.wait_until(accepted["id"], lambda job: job["state"] == "running")

    response = await lore.client.post(accepted["links"]["cancel"], headers=lore.admin)

    assert response.status_code == 202, response.text
    job = await lore.finished(accepted["id"])
    assert job["state"] == "cancelled", job
    assert job["documents_new"] + job["documents_failed"] < job["documents_total"] == 20


async def test_deleting_a_corpus_stops_its_running_job(lore: Lore, slow_embedding: float) -> None:
    corpus_id = await lore.new_corpus("deleted-while-running")
    accepted = (await lore.upload(corpus_id, many_files(20))).json()
    await lore.wait_until(accepted["id"], lambda job: job["state"] == "running" and job["documents_new"] > 0)

    response = await lore.client.delete(f"/v1/corpora/{corpus_id}", headers=lore.admin)

    assert response.status_code == 204, response.text
    runner = lore.app.state.jobs
    assert runner.get(accepted["id"]) is None
    await asyncio.sleep(2 * slow_embedding)
    assert corpus_collections(await lore.resources.store.collections(), "deleted-while-running") == []
    assert (await lore.client.get(f"/v1/jobs/{accepted['id']}", headers=lore.admin)).status_code == 404
    corpora = (await lore.client.get("/v1/corpora", headers=lore.admin)).json()
    assert "deleted-while-running" not in {c["name"] for c in corpora}


async def test_the_server_keeps_answering_while_a_job_works(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("responsive")
    paragraph = "Widgets are small devices; each has a colour, a weight and a serial number. "
    book = "\n\n".join(f"## Section {i}\n\n{paragraph * 12}" for i in range(120)).encode()

    accepted = (await lore.upload(corpus_id, [("book.md", b"# Book\n\n" + book)])).json()
    latencies: list[float] = []
    while (await lore.job(accepted["id"]))["state"] in ("queued", "running"):
        started = time.perf_counter()
        health = await lore.client.get("/health")
        latencies.append(time.perf_counter() - started)
        assert health.status_code == 200
        await asyncio.sleep(0.05)

    job = await lore.job(accepted["id"])
    assert job["state"] == "succeeded" and job["chunks_embedded"] > 100, job
    assert len(latencies) >= 5, "the job finished too fast to watch the server"
    assert max(latencies) < 1.0, sorted(latencies)[-5:]


async def test_shutdown_stops_running_jobs_and_records_them_interrupted(
    tmp_path: Path, user_key: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = api_settings(tmp_path / "lore")
    async with running_lore(settings, user_key) as lore:
        embed = lore.resources.embedder.embed

        async def slow(texts: Any) -> list[list[float]]:
            await asyncio.sleep(0.3)
            return await embed(texts)

        monkeypatch.setattr(lore.resources.embedder, "embed", slow)
        corpus_id = await lore.new_corpus("shutdown")
        accepted = (await lore.upload(corpus_id, many_files(20))).json()
        await lore.wait_until(accepted["id"], lambda job: job["state"] == "running")
        shutdown_started = time.perf_counter()
    assert time.perf_counter() - shutdown_started < 10

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            job = await session.get(IngestionJobRow, accepted["id"])
    finally:
        await engine.dispose()
    assert job is not None
    assert job.state == "interrupted" and job.finished_at is not None
    assert job.error is not None and "shut down" in job.error
    assert job.documents_new < 20


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database holding the corpus `web` (ID c1)."""
    engine = create_engine(api_settings(tmp_path / "lore"))
    await migrate.upgrade(engine)
    factory = session_factory(engine)
    async with factory() as session:
        session.add(CorpusRow(id="c1", name="web", version=0))
        await session.commit()
    try:
        yield factory
    finally:
        await engine.dispose()


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, str | None]]:
    async with sessions() as session:
        found = (await session.scalars(select(IngestionJobRow))).all()
    return [(r.id, r.state, r.kind, r.error) for r in found]


async def test_a_job_that_fails_before_it_is_recorded_is_recorded_failed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    runner = JobRunner(sessions)

    async def refused(job_id: str) -> object:
        raise InvalidInputError("refused intranet.test: it resolves to 10.1.2.3, a private address")

    job = runner.start(refused, corpus="web", corpus_id="c1", kind="crawl")
    assert job.task is not None
    await job.task

    assert await rows(sessions) == [
        (job.id, "failed", "crawl", "refused intranet.test: it resolves to 10.1.2.3, a private address")
    ]
    assert runner.get(job.id) is None


async def test_a_pending_job_is_answered_for_and_cancelled_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    runner = JobRunner(sessions)
    never = asyncio.Event()

    async def waits(job_id: str) -> object:
        await never.wait()  # never records a row, as a job that has not started yet
        return None

    job = runner.start(waits, corpus="web", corpus_id="c1", kind="upload", documents_total=3)
    assert [j.id for j in await runner.pending(corpus="web")] == [job.id]
    assert job.describe_pending()["state"] == "queued"

    assert await runner.cancel(job.id) is True

    assert job.task is not None and job.task.cancelled()
    assert await rows(sessions) == [
        (job.id, "cancelled", "upload", "cancelled by an admin before it started")
    ]
    assert runner.get(job.id) is None and await runner.pending() == []
    assert await runner.cancel(job.id) is False
