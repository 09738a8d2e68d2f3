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

from core.db.models import CorpusRow, IngestionJobRow, JobDocumentRow, JobSourceRow, utcnow
from core.errors import BackendError, ConfigurationError, LoreError
from core.resources import Resources
from ingestion.pipeline import (
    CorpusIndex,
    Source,
    _finish_one,
    _prepare_one,
    _prune_gone,
    corpus_index,
    get_or_create_corpus,
    refuse_while_reindexing,
    this_worker,
    write_chunks,
)

log = logging.getLogger("lore.ingestion.queue")

# The ``worker`` of a queued job's row: no one process runs it, so only its heartbeat tells it is alive.
QUEUE_WORKER = "queue"
# States in which a worker takes a job up (interrupted: every worker on it died; it resumes).
RUNNABLE = ("queued", "running", "interrupted")


async def enqueue_sources(
    resources: Resources,
    sources: Sequence[Source],
    *,
    corpus: str,
    kind: str = "ingest",
    prune_under: Sequence[str] = (),
    job_id: str | None = None,
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
        job = IngestionJobRow(
            id=job_id or str(uuid.uuid4()),
            corpus_id=corpus_row.id,
            kind=kind,
            state="queued",
            documents_total=len(unique),
            heartbeat_at=utcnow(),
            worker=QUEUE_WORKER,
            prune_under=list(prune_under) or None,
        )
        session.add(job)
        await session.flush()
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
    try:
        await resources.queue.enqueue(job.id)
    except Exception as exc:
        # No worker will ever see it: say so on the job rather than leave it queued for good.
        async with resources.sessions() as session:
            await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.id == job.id)
                .values(state="failed", finished_at=utcnow(), error=f"could not enqueue the job: {exc}")
            )
            await session.commit()
        raise BackendError(f"the job queue is unavailable: {exc}") from exc
    return job.id


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
                        IngestionJobRow.state.in_(("running", "interrupted")),
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
    worker = f"{this_worker()}:{uuid.uuid4().hex[:8]}"
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        if job is None or job.state not in RUNNABLE:
            return "gone" if job is None else job.state
        corpus = await session.get(CorpusRow, job.corpus_id)
        if corpus is None:
            return "gone"
        await session.execute(
            update(IngestionJobRow)
            .where(IngestionJobRow.id == job_id, IngestionJobRow.state.in_(RUNNABLE))
            .values(state="running", heartbeat_at=utcnow(), error=None, finished_at=None)
        )
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
            state = await _state(resources, job_id)
            if state != "running":
                await _release(resources, job_id, worker)
                return state
            claimed = await _claim(resources, job_id, worker, settings.claim_batch)
            if claimed:
                log.debug("worker %s claimed %s", worker, [src.source for src in claimed])
                await _ingest(resources, index, job_id, worker, claimed)
                if await _cancel_requested(resources, job_id):
                    await _release(resources, job_id, worker)
                    return await _finish(resources, job_id, index, "cancelled")
                continue
            if await _remaining(resources, job_id) == 0:
                return await _finish(resources, job_id, index, "succeeded")
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
    works = await asyncio.gather(*(_prepare_one(resources, src, index) for src in sources))
    to_write = [w for w in works if w.status is None]
    if to_write:
        try:
            await write_chunks(resources, index, [c for w in to_write for c in w.chunks])
        except BackendError:
            raise
        except LoreError as exc:
            for work in to_write:
                work.status, work.error = "failed", exc.message
    for work in works:
        if work.status is None:
            await _finish_one(resources, work, index)
        written = len(work.chunks) if work.status in ("new", "changed") else 0
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
            session.add(
                JobDocumentRow(
                    job_id=job_id,
                    source=work.src.source,
                    status=work.status,
                    chunks=written,
                    error=work.error,
                )
            )
            counter = getattr(IngestionJobRow, f"documents_{work.status}")
            await session.execute(
                update(IngestionJobRow)
                .where(IngestionJobRow.id == job_id)
                .values(
                    {
                        counter: counter + 1,
                        IngestionJobRow.chunks_embedded: IngestionJobRow.chunks_embedded + written,
                        IngestionJobRow.heartbeat_at: utcnow(),
                    }
                )
            )
            await session.commit()
        log.info("worker %s ingested %s: %s, %d chunks", worker, work.src.source, work.status, written)


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
                        .where(IngestionJobRow.id == job_id, IngestionJobRow.state == "running")
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


async def _state(resources: Resources, job_id: str) -> str:
    async with resources.sessions() as session:
        state = await session.scalar(select(IngestionJobRow.state).where(IngestionJobRow.id == job_id))
    return state or "gone"


async def _cancel_requested(resources: Resources, job_id: str) -> bool:
    async with resources.sessions() as session:
        return bool(
            await session.scalar(select(IngestionJobRow.cancel_requested).where(IngestionJobRow.id == job_id))
        )


async def _remaining(resources: Resources, job_id: str) -> int:
    async with resources.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(JobSourceRow)
            .where(JobSourceRow.job_id == job_id, JobSourceRow.done.is_(False))
        )
    return int(count or 0)


async def _finish(resources: Resources, job_id: str, index: CorpusIndex, state: str) -> str:
    """End the job as ``state`` unless another worker ended it first; the state it ends in."""
    async with resources.sessions() as session:
        ended = await session.execute(
            update(IngestionJobRow)
            .where(IngestionJobRow.id == job_id, IngestionJobRow.state == "running")
            .values(state=state, finished_at=utcnow(), heartbeat_at=utcnow())
        )
        await session.commit()
        if not ended.rowcount:  # type: ignore[attr-defined]
            return await _state(resources, job_id)
        # The worker that ends the job indexes what every worker wrote (the server does it itself).
        await resources.store.optimize(index.collection)
        job = await session.get(IngestionJobRow, job_id, populate_existing=True)
        assert job is not None
        deleted = 0
        if state == "succeeded" and job.prune_under:
            seen = set(
                (
                    await session.scalars(select(JobSourceRow.source).where(JobSourceRow.job_id == job_id))
                ).all()
            )
            deleted = await _prune_gone(resources, index.corpus, job.prune_under, seen)
        job.documents_deleted = deleted
        if job.documents_new or job.documents_changed or deleted:
            await session.execute(
                update(CorpusRow).where(CorpusRow.id == index.corpus.id).values(version=CorpusRow.version + 1)
            )
        await session.commit()
    log.info("job %s %s", job_id, state)
    return state
