"""The one owner of ingestion jobs: their states, their documents' outcomes, and every write to both.

Every runner (in-process ingest and upload, crawl, the queued workers, re-index, the API's job
runner) starts, records, finishes and cancels its job through these functions; nothing else writes
a job's state or a document's status. The CLI (`lore jobs`) and the admin API read jobs through
:func:`list_jobs` and :func:`get_job`.

A job's life: ``queued`` (on the Redis queue, no worker has it yet) or straight to ``running``;
then ``succeeded``, ``failed`` or ``cancelled``; or ``interrupted`` when the process running it
died (a queued job resumes from there on the next worker; an in-process one by running the same
command again, which skips what is unchanged).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import CorpusRow, IngestionJobRow, JobDocumentRow, utcnow
from core.errors import ConflictError, NotFoundError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def ended(self) -> bool:
        """Whether nothing runs it any more (an interrupted job may be resumed, as a new run)."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


class JobKind(StrEnum):
    INGEST = "ingest"  # files named on the command line
    UPLOAD = "upload"  # files sent to the API
    CRAWL = "crawl"
    REINDEX = "reindex"


class DocumentStatus(StrEnum):
    """What a job did with one document. A re-index records each document it rebuilt as changed."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"

    @property
    def written(self) -> bool:
        """Whether the document's chunks were written (and count as embedded)."""
        return self in (DocumentStatus.NEW, DocumentStatus.CHANGED)

    @property
    def counter(self) -> str:
        """The job's count of documents with this status."""
        return f"documents_{self.value}"


class DocumentStage(StrEnum):
    """Where a document is on its way; a written document reached the last, a failed one stopped
    in the stage that failed."""

    READ = "read"  # read from disk, or fetched; checked against what is indexed
    EXTRACT = "extract"
    CHUNK = "chunk"
    EMBED = "embed"
    WRITE = "write"  # stale chunks dropped, its row recorded


# A queued job is taken up by a worker in these states (interrupted: every worker on it died).
RUNNABLE = (JobState.QUEUED, JobState.RUNNING, JobState.INTERRUPTED)
# A job's counts, as the API and the CLI show them.
JOB_COUNTS = (
    "documents_total",
    *(status.counter for status in DocumentStatus),
    "documents_deleted",
    "chunks_embedded",
    "pages_ocr",
)
# A running job whose heartbeat is older than this (heartbeats come after every document), and
# whose process is not on this host, was killed.
STALE_HEARTBEAT = timedelta(minutes=10)


def this_worker() -> str:
    """``host:pid`` of this process, as recorded on the jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- writing a job's life ------------------------------------------------------------------------


async def start_job(
    session: AsyncSession,
    *,
    corpus_id: str,
    kind: JobKind,
    job_id: str | None = None,
    state: JobState = JobState.RUNNING,
    total: int = 0,
    worker: str | None = None,
    prune_under: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    retry_of: str | None = None,
    started_at: datetime | None = None,
) -> IngestionJobRow:
    """Add the job's row (flushed, not committed: the caller commits it with what goes with it).

    A ``job_id`` already recorded as queued (a crawl or re-index a worker takes up), or interrupted
    (one a worker died running, run again), is taken over: it starts afresh under this process.
    """
    job = await session.get(IngestionJobRow, job_id) if job_id is not None else None
    if job is not None:
        if job.state not in (JobState.QUEUED, JobState.INTERRUPTED):
            raise ConflictError(f"job {job_id} is {job.state}: it cannot start again")
        await session.execute(delete(JobDocumentRow).where(JobDocumentRow.job_id == job.id))
        for name in JOB_COUNTS:
            setattr(job, name, 0)
        job.documents_total = total or job.documents_total
        job.state, job.error, job.finished_at = state, None, None
        job.heartbeat_at, job.worker = utcnow(), worker or this_worker()
        await session.flush()
        return job
    job = IngestionJobRow(
        id=job_id or str(uuid.uuid4()),
        corpus_id=corpus_id,
        kind=kind,
        state=state,
        documents_total=total,
        heartbeat_at=utcnow(),
        worker=worker or this_worker(),
        prune_under=list(prune_under) or None,
        params=params,
        retry_of=retry_of,
    )
    if started_at is not None:
        job.started_at = started_at
    session.add(job)
    await session.flush()
    return job


async def resume_job(session: AsyncSession, *, job_id: str) -> bool:
    """Mark a queued (or resumed) job running as a worker takes it up; False when it is not runnable."""
    taken = await session.execute(
        update(IngestionJobRow)
        .where(IngestionJobRow.id == job_id, IngestionJobRow.state.in_(RUNNABLE))
        .values(state=JobState.RUNNING, heartbeat_at=utcnow(), error=None, finished_at=None)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


async def record_document(
    session: AsyncSession,
    *,
    job_id: str,
    source: str,
    status: DocumentStatus,
    chunks: int = 0,
    error: str | None = None,
    stage: DocumentStage | None = None,
    timings_ms: dict[str, float] | None = None,
    attempts: int = 1,
    ocr_pages: int = 0,
    total: int | None = None,
) -> None:
    """Record one document's outcome and count it on its job (``total``: the job's documents so far).

    ``stage`` is the stage it reached (for a failed one, the stage that failed), ``timings_ms`` the
    time each stage took, ``ocr_pages`` the pages of it that OCR read.
    """
    written = chunks if status.written else 0
    counter = getattr(IngestionJobRow, status.counter)
    values: dict[Any, Any] = {
        counter: counter + 1,
        IngestionJobRow.chunks_embedded: IngestionJobRow.chunks_embedded + written,
        IngestionJobRow.heartbeat_at: utcnow(),
    }
    if ocr_pages:
        values[IngestionJobRow.pages_ocr] = IngestionJobRow.pages_ocr + ocr_pages
    if total is not None:
        values[IngestionJobRow.documents_total] = total
    # The count after this one is the document's place in the job's order: the row lock that the
    # update takes makes it unique however many workers record at once.
    seq = await session.scalar(
        update(IngestionJobRow)
        .where(IngestionJobRow.id == job_id)
        .values(values)
        .returning(_documents_done(IngestionJobRow))
    )
    session.add(
        JobDocumentRow(
            job_id=job_id,
            source=source,
            status=status,
            chunks=written,
            error=error,
            stage=stage,
            timings_ms=timings_ms or None,
            attempts=attempts,
            ocr_pages=ocr_pages,
            seq=seq,
        )
    )


def _documents_done(job: Any) -> Any:
    """The job's documents recorded so far (of a row, or of the table in SQL)."""
    return job.documents_new + job.documents_changed + job.documents_unchanged + job.documents_failed


async def finish_job(
    session: AsyncSession,
    *,
    job_id: str,
    state: JobState,
    error: str | None = None,
    documents_deleted: int | None = None,
    replace: Collection[JobState] = (JobState.RUNNING,),
) -> bool:
    """End the job as ``state`` when it is in one of ``replace``; False when it was not (someone
    else, e.g. another worker or an admin's cancel, ended it first)."""
    now = utcnow()
    values: dict[str, Any] = {"state": state, "error": error, "finished_at": now, "heartbeat_at": now}
    if documents_deleted is not None:
        values["documents_deleted"] = documents_deleted
    ended = await session.execute(
        update(IngestionJobRow)
        .where(IngestionJobRow.id == job_id, IngestionJobRow.state.in_(list(replace)))
        .values(**values)
    )
    return bool(ended.rowcount)  # type: ignore[attr-defined]


async def record_deleted(session: AsyncSession, *, job_id: str, documents: int) -> None:
    """Count the documents an ended job deleted (retired as gone from their source)."""
    await session.execute(
        update(IngestionJobRow).where(IngestionJobRow.id == job_id).values(documents_deleted=documents)
    )


async def end_unrecorded_job(
    session: AsyncSession,
    *,
    job_id: str,
    corpus_id: str,
    kind: JobKind,
    total: int,
    accepted_at: datetime,
    state: JobState,
    error: str,
    replace: Collection[JobState],
) -> None:
    """End a job its runner accepted, making its row first if its run never started one."""
    if await session.get(IngestionJobRow, job_id) is None:
        if await session.get(CorpusRow, corpus_id) is None:
            return  # its corpus is gone, and the job with it
        await start_job(
            session, corpus_id=corpus_id, kind=kind, job_id=job_id, total=total, started_at=accepted_at
        )
    await finish_job(session, job_id=job_id, state=state, error=error, replace=(*replace, JobState.RUNNING))


async def fail_enqueue(session: AsyncSession, *, job_id: str, error: str) -> None:
    """A queued job that could not be put on the queue: no worker will ever see it."""
    await finish_job(session, job_id=job_id, state=JobState.FAILED, error=error, replace=(JobState.QUEUED,))


async def request_cancel(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    """Ask a running job to stop after the documents it is writing; a queued one stops at once."""
    async with sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        if job.state == JobState.QUEUED:
            # No worker has taken it yet: none will.
            job.state, job.finished_at = JobState.CANCELLED, utcnow()
            job.error = "cancelled before a worker took it"
        elif job.state != JobState.RUNNING:
            raise ConflictError(f"job {job_id} is {job.state}, not running")
        job.cancel_requested = True
        await session.commit()


async def mark_interrupted_jobs(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Mark running jobs whose process is gone as interrupted; how many.

    A process on this host is checked directly; elsewhere a heartbeat older than
    ``STALE_HEARTBEAT`` means its process died.
    """
    async with sessions() as session:
        running = (
            await session.execute(select(IngestionJobRow).where(IngestionJobRow.state == JobState.RUNNING))
        ).scalars()
        dead = [job for job in running if _is_dead(job.worker, job.heartbeat_at)]
        for job in dead:
            job.state, job.finished_at = JobState.INTERRUPTED, utcnow()
            job.error = "the process running the job stopped; run the same command again to resume"
        await session.commit()
    return len(dead)


def _is_dead(worker: str | None, heartbeat: datetime | None) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return heartbeat is None or utcnow() - heartbeat > STALE_HEARTBEAT


# --- reading a job ---------------------------------------------------------------------------------


async def job_state(session: AsyncSession, *, job_id: str) -> JobState | None:
    """The job's state; None when there is no such job."""
    state = await session.scalar(select(IngestionJobRow.state).where(IngestionJobRow.id == job_id))
    return JobState(state) if state is not None else None


async def cancel_requested(session: AsyncSession, *, job_id: str) -> bool:
    """Whether someone asked the job to stop."""
    return bool(
        await session.scalar(select(IngestionJobRow.cancel_requested).where(IngestionJobRow.id == job_id))
    )


async def running_job(
    session: AsyncSession, *, corpus_id: str, kind: JobKind | None = None, besides: str | None = None
) -> IngestionJobRow | None:
    """A running job of the corpus (of ``kind`` when given, other than ``besides``), if any."""
    query = select(IngestionJobRow).where(
        IngestionJobRow.corpus_id == corpus_id, IngestionJobRow.state == JobState.RUNNING
    )
    if kind is not None:
        query = query.where(IngestionJobRow.kind == kind)
    if besides is not None:
        query = query.where(IngestionJobRow.id != besides)
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def document_outcomes(
    session: AsyncSession, *, job_id: str
) -> dict[str, tuple[DocumentStatus, str | None]]:
    """Each document the job recorded: its status and, when it failed, why."""
    rows = (await session.execute(select(JobDocumentRow).where(JobDocumentRow.job_id == job_id))).scalars()
    return {row.source: (DocumentStatus(row.status), row.error) for row in rows}


def failures_of(outcomes: dict[str, tuple[DocumentStatus, str | None]]) -> list[dict[str, str | None]]:
    """The failed documents of :func:`document_outcomes`, by source, with their reasons."""
    return [
        {"source": source, "error": error}
        for source, (status, error) in sorted(outcomes.items())
        if status == DocumentStatus.FAILED
    ]


def describe_job(job: IngestionJobRow, corpus: str) -> dict[str, Any]:
    """A job as plain data: state, counts, throughput (documents and chunks per second), the seconds
    it has left while it runs (from its rate so far; None until it knows), times, error."""
    finished = job.finished_at
    state = JobState(job.state)
    seconds = ((finished or job.heartbeat_at or job.started_at) - job.started_at).total_seconds()
    done = _documents_done(job)
    rate = done / seconds if seconds > 0 else None
    left = job.documents_total - done
    return {
        "id": job.id,
        "corpus": corpus,
        "kind": JobKind(job.kind),
        "state": state,
        **{name: getattr(job, name) for name in JOB_COUNTS},
        "documents_done": done,
        "documents_per_s": round(rate, 2) if rate is not None else None,
        "chunks_per_s": round(job.chunks_embedded / seconds, 2) if seconds > 0 else None,
        "eta_s": round(left / rate, 1) if state == JobState.RUNNING and rate and left > 0 else None,
        "started_at": job.started_at.isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "error": job.error,
        "retry_of": job.retry_of,
    }


def describe_accepted(
    *, job_id: str, corpus: str, kind: JobKind, total: int, accepted_at: datetime
) -> dict[str, Any]:
    """A job as :func:`describe_job` shows one, accepted but not yet started (it has no row yet)."""
    return {
        "id": job_id,
        "corpus": corpus,
        "kind": kind,
        "state": JobState.QUEUED,
        **dict.fromkeys(JOB_COUNTS, 0),
        "documents_total": total,
        "documents_done": 0,
        "documents_per_s": None,
        "chunks_per_s": None,
        "eta_s": None,
        "started_at": accepted_at.isoformat(),
        "finished_at": None,
        "error": None,
        "retry_of": None,
    }


async def list_jobs(
    sessions: async_sessionmaker[AsyncSession], *, corpus: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Recent jobs, newest first (dead ones marked interrupted first)."""
    await mark_interrupted_jobs(sessions)
    query = (
        select(IngestionJobRow, CorpusRow.name)
        .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
        .order_by(IngestionJobRow.started_at.desc())
        .limit(limit)
    )
    if corpus is not None:
        query = query.where(CorpusRow.name == corpus)
    async with sessions() as session:
        return [describe_job(job, name) for job, name in (await session.execute(query)).all()]


async def get_job(sessions: async_sessionmaker[AsyncSession], job_id: str) -> dict[str, Any]:
    """One job with every failed document and its reason."""
    await mark_interrupted_jobs(sessions)
    row = await _job_with_corpus(sessions, job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id!r}")
    async with sessions() as session:
        outcomes = await document_outcomes(session, job_id=job_id)
    return {**describe_job(*row), "failures": failures_of(outcomes)}


async def job_documents(
    sessions: async_sessionmaker[AsyncSession], job_id: str, *, status: DocumentStatus | None = None
) -> list[dict[str, Any]]:
    """Every document the job recorded (``status``: only those), in the order it recorded them."""
    query = select(JobDocumentRow).where(JobDocumentRow.job_id == job_id)
    if status is not None:
        query = query.where(JobDocumentRow.status == status)
    async with sessions() as session:
        rows = (await session.execute(query.order_by(JobDocumentRow.seq, JobDocumentRow.source))).scalars()
        return [describe_outcome(row) for row in rows]


# --- watching a job ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job's progress stream: ``snapshot`` (the job as it is, first), ``document``
    (one document's outcome; ``id`` is its place in the job's order), ``progress`` (the job's
    counts, throughput and ETA, when they change) and ``end`` (the job in its final state, last)."""

    event: str
    data: dict[str, Any]
    id: int | None = None


def describe_outcome(row: JobDocumentRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "source": row.source,
        "status": DocumentStatus(row.status),
        "stage": DocumentStage(row.stage) if row.stage else None,
        "chunks": row.chunks,
        "error": row.error,
        "timings_ms": row.timings_ms or {},
        "attempts": row.attempts,
        "ocr_pages": row.ocr_pages,
    }


async def job_events(
    sessions: async_sessionmaker[AsyncSession],
    job_id: str,
    *,
    after: int = 0,
    poll_s: float = 0.5,
    accepted: dict[str, Any] | None = None,
    still_accepted: Callable[[], bool] = lambda: False,
) -> AsyncIterator[JobEvent]:
    """The job's progress, read from the database as any process records it, until it ends.

    ``after`` skips the documents already seen (an SSE client's ``Last-Event-ID``). ``accepted``
    describes a job this process accepted but has not recorded yet; the stream waits for its row
    while ``still_accepted()`` holds. Raises :class:`NotFoundError` for a job that does not exist.
    """
    row = await _job_with_corpus(sessions, job_id)
    if row is None:
        if accepted is None:
            raise NotFoundError(f"no job {job_id!r}")
        yield JobEvent("snapshot", accepted)
        while (row := await _job_with_corpus(sessions, job_id)) is None:
            if not still_accepted():
                raise NotFoundError(f"job {job_id!r} ended before it started")
            await asyncio.sleep(poll_s)
        last = accepted  # its start is progress
    else:
        last = describe_job(*row)
        yield JobEvent("snapshot", last)
    seen, checked = after, time.monotonic()
    while True:
        for outcome in await _recorded_after(sessions, job_id, seen):
            seen = outcome["seq"]
            yield JobEvent("document", outcome, id=seen)
        if time.monotonic() - checked > STALE_CHECK_S:
            # A job whose process died would otherwise be watched for ever.
            await mark_interrupted_jobs(sessions)
            checked = time.monotonic()
        row = await _job_with_corpus(sessions, job_id)
        if row is None:
            return  # its corpus was deleted, and the job with it
        now = describe_job(*row)
        if JobState(row[0].state).ended:
            # Documents recorded just before it ended come first.
            for outcome in await _recorded_after(sessions, job_id, seen):
                yield JobEvent("document", outcome, id=outcome["seq"])
            yield JobEvent("end", now)
            return
        if _progress_of(now) != _progress_of(last):
            yield JobEvent("progress", now)
            last = now
        await asyncio.sleep(poll_s)


# How often a watched job is checked for a dead process.
STALE_CHECK_S = 5.0


async def _recorded_after(
    sessions: async_sessionmaker[AsyncSession], job_id: str, seen: int
) -> list[dict[str, Any]]:
    """The job's documents recorded after the ``seen``-th, in order (read in full, so that no
    connection is held while a slow client takes them)."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(JobDocumentRow)
                .where(JobDocumentRow.job_id == job_id, JobDocumentRow.seq > seen)
                .order_by(JobDocumentRow.seq)
            )
        ).scalars()
        return [describe_outcome(row) for row in rows]


def _progress_of(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["state"], *(job[name] for name in JOB_COUNTS))


async def _job_with_corpus(
    sessions: async_sessionmaker[AsyncSession], job_id: str
) -> tuple[IngestionJobRow, str] | None:
    async with sessions() as session:
        found = (
            await session.execute(
                select(IngestionJobRow, CorpusRow.name)
                .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
                .where(IngestionJobRow.id == job_id)
            )
        ).first()
    return (found[0], found[1]) if found is not None else None
