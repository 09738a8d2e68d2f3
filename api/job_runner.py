"""Ingestion jobs the API starts: asyncio tasks on the server's loop, answered for before they run.

A job gets its ID when it is accepted; the pipeline records the job row under that ID when the job
starts, and until then this runner answers for the job as ``queued``. The pipeline keeps the row's
state, counts and failures; the runner records what the pipeline cannot: a job cancelled before it
started or stopped part way, a job cut off by the shutdown (``interrupted``), a job that failed
before its row existed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from api.dependencies import on_loop
from core.db.models import IngestionJobRow, utcnow
from core.errors import LoreError
from ingestion.jobs import JobKind, JobState, describe_accepted, end_unrecorded_job, request_cancel

log = logging.getLogger("lore.api.jobs")

SHUTDOWN_ERROR = (
    "the server shut down while the job ran; start it again to finish (unchanged documents are skipped)"
)
CANCELLED_PENDING = "cancelled by an admin before it started"
CANCELLED_PART_WAY = (
    "cancelled by an admin, and stopped part way through a document as it did not stop between two "
    "in time; a re-run repairs what it left half written"
)


@dataclass(slots=True)
class RunningJob:
    """A job this server runs: what it is, and the task running it."""

    id: str
    corpus: str
    corpus_id: str
    kind: JobKind
    documents_total: int
    accepted_at: datetime = field(default_factory=utcnow)
    task: asyncio.Task[None] | None = None
    stopping: bool = False

    def describe_pending(self) -> dict[str, Any]:
        """The job as :func:`ingestion.jobs.describe_job` shows one, before its row exists."""
        return describe_accepted(
            job_id=self.id,
            corpus=self.corpus,
            kind=self.kind,
            total=self.documents_total,
            accepted_at=self.accepted_at,
        )


class JobRunner:
    """Runs ingestion jobs as tasks, keeps them referenced, and stops them on cancel or shutdown."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, cancel_grace_s: float = 10.0) -> None:
        self._sessions = sessions
        # How long a cancelled job may take to reach its next stop between documents.
        self.cancel_grace_s = cancel_grace_s
        self._jobs: dict[str, RunningJob] = {}
        self._watchdogs: set[asyncio.Task[None]] = set()

    def start(
        self,
        run: Callable[[str], Awaitable[object]],
        *,
        corpus: str,
        corpus_id: str,
        kind: JobKind,
        documents_total: int = 0,
    ) -> RunningJob:
        """Start ``run(job_id)`` in the background and return the job at once."""
        job = RunningJob(
            id=str(uuid.uuid4()),
            corpus=corpus,
            corpus_id=corpus_id,
            kind=kind,
            documents_total=documents_total,
        )
        job.task = asyncio.create_task(self._run(job, run), name=f"job {job.id} ({kind} into {corpus})")
        job.task.add_done_callback(lambda _: self._forget(job))
        self._jobs[job.id] = job
        return job

    def starter(self) -> Callable[..., str]:
        """:meth:`start` as :func:`ingestion.submit.submit_job` calls it: the job's ID back."""

        def start(run: Callable[[str], Awaitable[object]], **job: Any) -> str:
            return self.start(run, **job).id

        return start

    def get(self, job_id: str) -> RunningJob | None:
        return self._jobs.get(job_id)

    async def pending(self, *, corpus: str | None = None) -> list[RunningJob]:
        """This server's jobs whose pipeline has not recorded them yet, newest first."""
        jobs = [j for j in self._jobs.values() if corpus is None or j.corpus == corpus]
        if not jobs:
            return []
        async with self._sessions() as session:
            recorded = set(
                (
                    await session.scalars(
                        select(IngestionJobRow.id).where(IngestionJobRow.id.in_([j.id for j in jobs]))
                    )
                ).all()
            )
        return sorted((j for j in jobs if j.id not in recorded), key=lambda j: j.accepted_at, reverse=True)

    async def cancel(self, job_id: str) -> bool:
        """Stop a job of this server; False when it runs elsewhere (or nowhere).

        A pending job stops at once. A running one is asked to stop after the documents it is writing, as
        any job is; if it has not stopped within ``cancel_grace_s`` (a document that takes long, a
        crawl waiting on a slow site), its task is cancelled. Raises :class:`ConflictError` for a
        job that is no longer running.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if job_id in {j.id for j in await self.pending()}:
            await self._stop([job], state=JobState.CANCELLED, error=CANCELLED_PENDING, timeout_s=10.0)
            return True
        await request_cancel(self._sessions, job_id)
        watchdog = asyncio.create_task(self._stop_unless_stopped(job), name=f"cancel {job.id}")
        self._watchdogs.add(watchdog)
        watchdog.add_done_callback(self._watchdogs.discard)
        return True

    async def _stop_unless_stopped(self, job: RunningJob) -> None:
        if job.task is None:
            return
        done, _ = await asyncio.wait({job.task}, timeout=self.cancel_grace_s)
        if not done:
            await self._stop([job], state=JobState.CANCELLED, error=CANCELLED_PART_WAY, timeout_s=10.0)

    async def stop_corpus(self, corpus_id: str) -> None:
        """Stop this server's jobs into a corpus about to be deleted, so none writes to it afterwards."""
        jobs = [j for j in self._jobs.values() if j.corpus_id == corpus_id]
        if jobs:
            await self._stop(jobs, state=JobState.CANCELLED, error="its corpus was deleted", timeout_s=10.0)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Cancel every running job and record each interrupted (the server is shutting down)."""
        for watchdog in self._watchdogs:
            watchdog.cancel()
        if self._jobs:
            log.warning("cancelling %d running ingestion job(s) at shutdown", len(self._jobs))
            await self._stop(
                list(self._jobs.values()),
                state=JobState.INTERRUPTED,
                error=SHUTDOWN_ERROR,
                timeout_s=timeout_s,
            )

    async def _run(self, job: RunningJob, run: Callable[[str], Awaitable[object]]) -> None:
        log.info("job %s started: %s into %s", job.id, job.kind, job.corpus)
        try:
            result = await run(job.id)
        except Exception as exc:
            expected = isinstance(exc, LoreError)
            reason = exc.message if isinstance(exc, LoreError) else f"{type(exc).__name__}: {exc}"
            log.error(
                "job %s (%s into %s) failed: %s", job.id, job.kind, job.corpus, reason, exc_info=not expected
            )
            # A crawl can fail after its ingestion finished (retiring gone pages): the job failed.
            await self._record(job, state=JobState.FAILED, error=reason, replace=(JobState.SUCCEEDED,))
            return
        log.info("job %s finished: %s", job.id, getattr(result, "state", "done"))

    async def _stop(
        self, jobs: Sequence[RunningJob], *, state: JobState, error: str, timeout_s: float
    ) -> None:
        tasks: set[asyncio.Task[None]] = set()
        for job in jobs:
            job.stopping = True
            if job.task is not None:
                job.task.cancel()
                tasks.add(job.task)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout_s)
            if late:
                log.error("%d job(s) did not stop within %.0f s", len(late), timeout_s)
        for job in jobs:
            # The pipeline marks a job it sees cancelled as cancelled (or failed, if the cancel hit
            # it as it failed); either was this stop, which knows why.
            await self._record(job, state=state, error=error, replace=(JobState.FAILED, JobState.CANCELLED))
            self._jobs.pop(job.id, None)
            log.warning("job %s (%s into %s) %s", job.id, job.kind, job.corpus, state)

    async def _record(
        self, job: RunningJob, *, state: JobState, error: str, replace: Sequence[JobState]
    ) -> None:
        """End the job as ``state`` when it runs or is in ``replace``; make its row if there is none."""
        try:
            async with self._sessions() as session:
                await end_unrecorded_job(
                    session,
                    job_id=job.id,
                    corpus_id=job.corpus_id,
                    kind=job.kind,
                    total=job.documents_total,
                    accepted_at=job.accepted_at,
                    state=state,
                    error=error,
                    replace=replace,
                )
                await session.commit()
        except Exception:
            log.exception("could not record job %s as %s", job.id, state)

    def _forget(self, job: RunningJob) -> None:
        # A job being stopped is forgotten once its stop is recorded (see _stop).
        if not job.stopping:
            self._jobs.pop(job.id, None)


def get_job_runner(connection: HTTPConnection) -> JobRunner:
    """The app's job runner (made by the lifespan)."""
    runner: JobRunner = connection.app.state.jobs
    return runner


JobRunnerDep = Annotated[JobRunner, Depends(on_loop(get_job_runner))]
