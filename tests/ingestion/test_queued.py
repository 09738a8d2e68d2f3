"""Queued jobs in one process (the queue itself stood in for): claims keep concurrent workers off
each other's documents, a lapsed claim is taken over, a job cancelled before it starts never runs,
and a queued job ends with the documents and chunks an in-process run makes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.db.models import DocumentRow, IngestionJobRow, JobDocumentRow, JobSourceRow, utcnow
from core.errors import BackendError
from core.resources import Resources
from ingestion.corpus_index import corpus_index
from ingestion.jobs import request_cancel
from ingestion.pipeline import ingest_paths
from ingestion.queued import enqueue_sources, requeue_orphaned_jobs, run_queued_job
from ingestion.sources import Source, discover


class RecordingQueue:
    """Stands in for the Redis queue: remembers what was enqueued."""

    def __init__(self) -> None:
        self.enqueued: list[str] = []

    async def enqueue(self, job_id: str, *, attempt: str = "", copies: int | None = None) -> None:
        self.enqueued.append(job_id)

    async def close(self) -> None:
        pass


def make_docs(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(f"Point {j} of note {i} concerns subject {i * 7 + j}." for j in range(20))
        (root / f"note{i:02d}.md").write_text(f"# Note {i}\n\n{body}\n")
    return root


async def job_rows(resources: Resources, job_id: str) -> list[tuple[str, str]]:
    async with resources.sessions() as session:
        rows = await session.execute(
            select(JobDocumentRow.source, JobDocumentRow.status).where(JobDocumentRow.job_id == job_id)
        )
        return sorted((Path(s).name, status) for s, status in rows.all())


async def test_two_workers_in_one_process_record_each_document_once(
    resources: Resources, tmp_path: Path
) -> None:
    queue = RecordingQueue()
    resources.queue = queue  # type: ignore[assignment]
    docs = make_docs(tmp_path / "docs", 8)
    resources.settings.queue.claim_batch = 1

    job_id = await enqueue_sources(resources, discover([docs]), corpus="c", prune_under=[f"{docs}/"])
    assert queue.enqueued == [job_id]
    states = await asyncio.gather(run_queued_job(resources, job_id), run_queued_job(resources, job_id))

    assert "succeeded" in states
    assert await job_rows(resources, job_id) == [(f"note{i:02d}.md", "new") for i in range(8)]
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        assert job is not None
        assert (job.state, job.documents_new, job.documents_total) == ("succeeded", 8, 8)
        # the bytes of queued sources are dropped once done
        assert not (await session.scalars(select(JobSourceRow).where(JobSourceRow.data.is_not(None)))).all()

    # and the corpus is what an in-process ingest makes: a re-run finds every document unchanged
    summary = await ingest_paths(resources, [docs], corpus="c")
    assert (summary.documents_unchanged, summary.chunks_embedded) == (8, 0)


async def test_a_lapsed_claim_is_taken_over(resources: Resources, tmp_path: Path) -> None:
    resources.queue = RecordingQueue()  # type: ignore[assignment]
    docs = make_docs(tmp_path / "docs", 3)
    job_id = await enqueue_sources(resources, discover([docs]), corpus="c")
    # Given a worker that died holding every document: its claims' leases have run out
    async with resources.sessions() as session:
        await session.execute(
            update(JobSourceRow).values(claimed_by="gone:1:dead", lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    assert await run_queued_job(resources, job_id) == "succeeded"
    assert len(await job_rows(resources, job_id)) == 3


async def test_a_live_claim_is_left_alone_until_it_lapses(resources: Resources, tmp_path: Path) -> None:
    resources.queue = RecordingQueue()  # type: ignore[assignment]
    resources.settings.queue.lease_s = 1.0
    docs = make_docs(tmp_path / "docs", 2)
    job_id = await enqueue_sources(resources, discover([docs]), corpus="c")
    held = str((docs / "note00.md").resolve())
    async with resources.sessions() as session:
        await session.execute(
            update(JobSourceRow)
            .where(JobSourceRow.source == held)
            .values(claimed_by="other:1:alive", lease_until=utcnow() + timedelta(seconds=1.5))
        )
        await session.commit()

    # The worker does the free document, waits for the held one, and takes it once its lease lapses.
    started = asyncio.get_running_loop().time()
    assert await run_queued_job(resources, job_id) == "succeeded"
    assert asyncio.get_running_loop().time() - started >= 1.0
    assert await job_rows(resources, job_id) == [("note00.md", "new"), ("note01.md", "new")]


async def test_a_job_cancelled_before_a_worker_takes_it_never_runs(resources: Resources) -> None:
    resources.queue = RecordingQueue()  # type: ignore[assignment]
    job_id = await enqueue_sources(
        resources, [Source(source="mem://a.md", name="a.md", data=b"# A\n")], corpus="c"
    )

    await request_cancel(resources.sessions, job_id)

    assert await run_queued_job(resources, job_id) == "cancelled"
    assert await job_rows(resources, job_id) == []
    async with resources.sessions() as session:
        assert (await session.scalars(select(DocumentRow))).all() == []


async def test_uploaded_bytes_travel_with_the_job(resources: Resources) -> None:
    resources.queue = RecordingQueue()  # type: ignore[assignment]
    source = Source(source="upload://c/readme.md", name="readme.md", data=b"# Readme\n\nQueued bytes.\n")
    job_id = await enqueue_sources(resources, [source], corpus="c", kind="upload")

    assert await run_queued_job(resources, job_id) == "succeeded"
    index = await corpus_index(resources, "c")
    assert len(await resources.store.chunk_ids(index.collection)) == 1


async def test_a_job_the_queue_refuses_is_failed_not_left_queued(resources: Resources) -> None:
    class DownQueue(RecordingQueue):
        async def enqueue(self, job_id: str, *, attempt: str = "", copies: int | None = None) -> None:
            raise ConnectionError("redis is down")

    resources.queue = DownQueue()  # type: ignore[assignment]
    source = Source(source="mem://a.md", name="a.md", data=b"# A\n")

    with pytest.raises(BackendError, match="redis is down"):
        await enqueue_sources(resources, [source], corpus="c")

    async with resources.sessions() as session:
        job = (await session.scalars(select(IngestionJobRow))).one()
    assert job.state == "failed" and "redis is down" in (job.error or "")


@pytest.mark.postgres
async def test_on_postgresql_a_claim_takes_claim_batch_documents_and_two_claims_never_overlap(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    from core.db import migrate
    from core.db.engine import create_engine
    from core.resources import open_resources
    from core.settings import Settings
    from ingestion.queued import _claim

    settings = Settings(data_dir=tmp_path / "lore", database={"url": fresh_postgres_url})
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    async with open_resources(settings, with_llm=False) as resources:
        resources.queue = RecordingQueue()  # type: ignore[assignment]
        docs = [Source(source=f"mem://{i}.md", name=f"{i}.md", data=b"# x\n") for i in range(7)]
        job_id = await enqueue_sources(resources, docs, corpus="c")

        claims = await asyncio.gather(*(_claim(resources, job_id, f"w{i}", 2) for i in range(5)))

    taken = [src.source for claim in claims for src in claim]
    assert all(len(claim) <= 2 for claim in claims)
    assert sorted(taken) == sorted(src.source for src in docs)


async def test_a_starting_worker_enqueues_again_the_jobs_no_worker_serves(resources: Resources) -> None:
    queue = RecordingQueue()
    resources.queue = queue  # type: ignore[assignment]
    one = Source(source="mem://a.md", name="a.md", data=b"# A\n")
    orphan = await enqueue_sources(resources, [one], corpus="c")
    served = await enqueue_sources(resources, [one], corpus="c")
    waiting = await enqueue_sources(resources, [one], corpus="c")
    # Given a job whose workers all died a while ago, one a worker renews now, one not started yet
    async with resources.sessions() as session:
        long_ago = utcnow() - timedelta(seconds=resources.settings.queue.lease_s * 2)
        await session.execute(
            update(IngestionJobRow)
            .where(IngestionJobRow.id == orphan)
            .values(state="running", heartbeat_at=long_ago)
        )
        await session.execute(
            update(IngestionJobRow).where(IngestionJobRow.id == served).values(state="running")
        )
        await session.commit()
    queue.enqueued.clear()

    assert await requeue_orphaned_jobs(resources) == [orphan]
    assert queue.enqueued == [orphan]
    assert waiting not in queue.enqueued
