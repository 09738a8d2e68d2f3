"""Queued ingestion jobs: enqueued by one process, run by any number of workers on any machines.

A queued job's documents are rows of ``ingestion_job_sources``. A worker claims a few at a time
(a claim is a lease that its heartbeat renews), ingests them with the pipeline's own steps, and
marks each done in the same transaction that records it, only while its claim still holds: so
each document is recorded once, and a killed worker's documents become claimable again when its
leases run out. Chunk and document IDs are derived, so a document that a killed worker left half
written is written again to the same state. The worker that sees the last document done
finishes the job (prunes gone documents, moves the corpus's version on).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from core.db.models import CorpusRow, IngestionJobRow, JobSourceRow, utcnow
from core.errors import BackendError, ConfigurationError
from core.resources import Resources
from ingestion import jobs
from ingestion.corpus_index import CorpusIndex, corpus_index, get_or_create_corpus, refuse_while_reindexing
from ingestion.jobs import RUNNABLE, JobKind, JobState
from ingestion.retire import prune_gone
from ingestion.sources import Source
from ingestion.stages import embed_and_write, finish_document, prepare_document

log = logging.getLogger("lore.ingestion.queue")

# The ``worker`` of a queued job's row: no one process runs it, so only its heartbeat tells it is alive.
QUEUE_WORKER = "queue"


async def enqueue_sources(
    resources: Resources,
    sources: Sequence[Source],
    *,
    corpus: str,
    kind: JobKind = JobKind.INGEST,
    prune_under: Sequence[str] = (),
    job_id: str | None = None,
    retry_of: str | None = None,
) -> str:
    """Record a job of ``sources`` into ``corpus`` as queued, put it on the queue, return its ID.

    Sources given by path must be readable at that path by the workers (a shared volume);
    sources given as bytes (uploads) travel in the database.
    """
    if resources.queue is None:
        raise ConfigurationError("no job queue is configured: set LORE_QUEUE__REDIS_URL")
    unique = {src.source: src for src in sources}
    async with resources.sessions() as session:
        corpus_row = await get_or_create_corpus(session, corpus)
        await refuse_while_reindexing(session, corpus_row)
        job = await jobs.start_job(
            session,
            corpus_id=corpus_row.id,
            kind=kind,
            job_id=job_id,
            state=JobState.QUEUED,
            total=len(unique),
            worker=QUEUE_WORKER,
            prune_under=prune_under,
            retry_of=retry_of,
        )
        session.add_all(
            JobSourceRow(
                job_id=job.id,
                source=src.source,
                name=src.name,
                path=str(src.path) if src.path is not None else None,
                data=src.data,
            )
            for src in unique.values()
        )
        await session.commit()
    await put_on_queue(resources, job.id)
    return job.id


async def put_on_queue(resources: Resources, job_id: str, *, copies: int | None = None) -> None:
    """Enqueue a job recorded as queued (``copies``: workers that may share it, default the setting)."""
    assert resources.queue is not None
    try:
        await resources.queue.enqueue(job_id, copies=copies)
    except Exception as exc:
        # No worker will ever see it: say so on the job rather than leave it queued for good.
        async with resources.sessions() as session:
            await jobs.fail_enqueue(session, job_id=job_id, error=f"could not enqueue the job: {exc}")
            await session.commit()
        raise BackendError(f"the job queue is unavailable: {exc}") from exc


async def requeue_orphaned_jobs(resources: Resources) -> list[str]:
    """Enqueue again the queued jobs that no worker serves any more; their IDs.

    A job whose every worker was killed is still "in progress" for arq until its task timeout
    (``queue.job_timeout_s``): a worker starting up puts such jobs (running or interrupted, no
    heartbeat for a lease) back on the queue, so that it, or another, resumes them now.
    """
    if resources.queue is None:
        return []
    silent_since = utcnow() - timedelta(seconds=resources.settings.queue.lease_s)
    async with resources.sessions() as session:
        orphans = list(
            (
                await session.scalars(
                    select(IngestionJobRow.id).where(
                        IngestionJobRow.worker == QUEUE_WORKER,
                        IngestionJobRow.state.in_((JobState.RUNNING, JobState.INTERRUPTED)),
                        IngestionJobRow.heartbeat_at < silent_since,
                    )
                )
            ).all()
        )
    for job_id in orphans:
        await resources.queue.enqueue(job_id, attempt=f"{uuid.uuid4().hex[:8]}-")
        log.warning("job %s had no live worker: enqueued again", job_id)
    return orphans


async def run_queued_job(resources: Resources, job_id: str) -> str:
    """Claim and ingest ``job_id``'s documents until none is left; the job's state as this worker left it.

    Returns at once for a job that is gone or already ended. Waits while other workers hold the
    last documents, taking over those whose claims lapse.
    """
    worker = f"{jobs.this_worker()}:{uuid.uuid4().hex[:8]}"
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        if job is None or job.state not in RUNNABLE:
            return "gone" if job is None else job.state
        corpus = await session.get(CorpusRow, job.corpus_id)
        if corpus is None:
            return "gone"
        await jobs.resume_job(session, job_id=job_id)
        await session.commit()
    index = await corpus_index(resources, corpus.name)
    log.info("worker %s joins job %s (%s into %s)", worker, job_id, job.kind, corpus.name)
    try:
        return await _work(resources, job_id, worker, index)
    except asyncio.CancelledError:
        # The worker is stopping: hand its documents back now rather than when the leases lapse.
        await asyncio.shield(_release(resources, job_id, worker))
        raise


async def _work(resources: Resources, job_id: str, worker: str, index: CorpusIndex) -> str:
    """Claim and ingest until no document is left, or the job ends or is cancelled."""
    settings = resources.settings.queue
    poll_s = min(1.0, settings.lease_s / 4)
    async with _renewing_leases(resources, job_id, worker):
        while True:
            async with resources.sessions() as session:
                state = await jobs.job_state(session, job_id=job_id)
            if state != JobState.RUNNING:
                await _release(resources, job_id, worker)
                return state or "gone"
            claimed = await _claim(resources, job_id, worker, settings.claim_batch)
            if claimed:
                log.debug("worker %s claimed %s", worker, [src.source for src in claimed])
                await _ingest(resources, index, job_id, worker, claimed)
                async with resources.sessions() as session:
                    cancelled = await jobs.cancel_requested(session, job_id=job_id)
                if cancelled:
                    await _release(resources, job_id, worker)
                    return await _finish(resources, job_id, index, JobState.CANCELLED)
                continue
            if await _remaining(resources, job_id) == 0:
                return await _finish(resources, job_id, index, JobState.SUCCEEDED)
            await asyncio.sleep(poll_s)


def _claimable(job_id: str) -> ColumnElement[bool]:
    """The job's documents not done that no live claim holds."""
    now = utcnow()
    return and_(
        JobSourceRow.job_id == job_id,
        JobSourceRow.done.is_(False),
        or_(JobSourceRow.claimed_by.is_(None), JobSourceRow.lease_until < now),
    )


async def _claim(resources: Resources, job_id: str, worker: str, count: int) -> list[Source]:
    """Claim up to ``count`` documents no live claim holds; the sources claimed."""
    lease = utcnow() + timedelta(seconds=resources.settings.queue.lease_s)
    async with resources.sessions() as session:
        # Two statements, not UPDATE ... WHERE source IN (SELECT ... LIMIT): PostgreSQL may run
        # such a subquery more than once and update more rows than the limit.
        picked = (
            await session.scalars(
                select(JobSourceRow.source)
                .where(_claimable(job_id))
                .order_by(JobSourceRow.source)
                .limit(count)
                # PostgreSQL: lock the rows picked, skipping those another worker is claiming now
                # (SQLite has one writer at a time).
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not picked:
            return []
        rows = (
            await session.execute(
                update(JobSourceRow)
                # Checked again: on SQLite another worker may have claimed them since the select.
                .where(_claimable(job_id), JobSourceRow.source.in_(picked))
                .values(claimed_by=worker, lease_until=lease)
                .returning(JobSourceRow.source, JobSourceRow.name, JobSourceRow.path, JobSourceRow.data)
            )
        ).all()
        await session.commit()
    return [
        Source(source=source, name=name, path=Path(path) if path is not None else None, data=data)
        for source, name, path, data in sorted(rows)
    ]


async def _ingest(
    resources: Resources, index: CorpusIndex, job_id: str, worker: str, sources: list[Source]
) -> None:
    """Prepare, embed, write and record the claimed documents, as the in-process pipeline does."""
    works = await asyncio.gather(*(prepare_document(resources, src, index) for src in sources))
    await embed_and_write(resources, index, works)
    for work in works:
        if work.status is None:
            await finish_document(resources, work, index)
        assert work.status is not None
        async with resources.sessions() as session:
            done = await session.execute(
                update(JobSourceRow)
                .where(
                    JobSourceRow.job_id == job_id,
                    JobSourceRow.source == work.src.source,
                    JobSourceRow.claimed_by == worker,
                    JobSourceRow.done.is_(False),
                )
                .values(done=True, data=None, lease_until=None)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                # Our claim lapsed and another worker took the document: it records it.
                log.warning("worker %s lost its claim on %s", worker, work.src.source)
                await session.rollback()
                continue
            await jobs.record_document(
                session,
                job_id=job_id,
                source=work.src.source,
                status=work.status,
                chunks=work.written,
                error=work.error,
                stage=work.stage,
                timings_ms=work.timings_ms,
                attempts=work.attempts,
                ocr_pages=work.ocr_pages,
            )
            await session.commit()
        log.info("worker %s ingested %s: %s, %d chunks", worker, work.src.source, work.status, work.written)


@asynccontextmanager
async def _renewing_leases(resources: Resources, job_id: str, worker: str) -> AsyncIterator[None]:
    """Renew this worker's claims and the job's heartbeat every third of a lease while the body runs."""
    lease_s = resources.settings.queue.lease_s

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                async with resources.sessions() as session:
                    await session.execute(
                        update(JobSourceRow)
                        .where(
                            JobSourceRow.job_id == job_id,
                            JobSourceRow.claimed_by == worker,
                            JobSourceRow.done.is_(False),
                        )
                        .values(lease_until=utcnow() + timedelta(seconds=lease_s))
                    )
                    await session.execute(
                        update(IngestionJobRow)
                        .where(IngestionJobRow.id == job_id, IngestionJobRow.state == JobState.RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
                    await session.commit()
            except Exception:
                # A missed renewal costs at worst a claim another worker takes over; keep trying.
                log.exception("worker %s could not renew its claims on job %s", worker, job_id)

    task = asyncio.create_task(renew(), name=f"leases of {worker}")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _release(resources: Resources, job_id: str, worker: str) -> None:
    async with resources.sessions() as session:
        await session.execute(
            update(JobSourceRow)
            .where(
                JobSourceRow.job_id == job_id, JobSourceRow.claimed_by == worker, JobSourceRow.done.is_(False)
            )
            .values(claimed_by=None, lease_until=None)
        )
        await session.commit()


async def _remaining(resources: Resources, job_id: str) -> int:
    async with resources.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(JobSourceRow)
            .where(JobSourceRow.job_id == job_id, JobSourceRow.done.is_(False))
        )
    return int(count or 0)


async def _finish(resources: Resources, job_id: str, index: CorpusIndex, state: JobState) -> str:
    """End the job as ``state`` unless another worker ended it first; the state it ends in."""
    async with resources.sessions() as session:
        ended = await jobs.finish_job(session, job_id=job_id, state=state)
        await session.commit()
        if not ended:
            return str(await jobs.job_state(session, job_id=job_id) or "gone")
        # The worker that ends the job indexes what every worker wrote (the server does it itself).
        await resources.store.optimize(index.collection)
        job = await session.get(IngestionJobRow, job_id, populate_existing=True)
        assert job is not None
        deleted = 0
        if state == JobState.SUCCEEDED and job.prune_under:
            seen = set(
                (
                    await session.scalars(select(JobSourceRow.source).where(JobSourceRow.job_id == job_id))
                ).all()
            )
            deleted = await prune_gone(resources, index.corpus, job.prune_under, seen)
        await jobs.record_deleted(session, job_id=job_id, documents=deleted)
        if job.documents_new or job.documents_changed or deleted:
            await session.execute(
                update(CorpusRow).where(CorpusRow.id == index.corpus.id).values(version=CorpusRow.version + 1)
            )
        await session.commit()
    log.info("job %s %s", job_id, state)
    return state
