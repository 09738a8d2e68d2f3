"""Where a job runs: one decision for every kind of job (ingest, upload, crawl, re-index).

:func:`submit_job` puts a job on the Redis queue when one is configured (``LORE_QUEUE__REDIS_URL``),
for any `lore worker` to run, and otherwise hands it to the caller's in-process starter (the API's
job runner). A queued ingest or upload records its documents for workers to share (see
:mod:`ingestion.queued`); a queued crawl or re-index records what it needs to run (its start
URLs and crawl settings, its model and chunker) and runs on one worker. :func:`run_queued` is what a
worker runs for any queued job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from core.db.models import CorpusRow, IngestionJobRow
from core.errors import BackendError, ConfigurationError, ConflictError, LoreError, NotFoundError
from core.resources import Resources
from core.settings import CrawlSettings
from ingestion import jobs
from ingestion.corpus_index import get_or_create_corpus, refuse_while_reindexing
from ingestion.crawl import crawl
from ingestion.crawl.service import crawl_params
from ingestion.jobs import DocumentStatus, JobKind, JobState
from ingestion.pipeline import IngestSummary, Progress, ingest_sources
from ingestion.queued import QUEUE_WORKER, enqueue_sources, put_on_queue, run_queued_job
from ingestion.reindex import ReindexSummary, check_can_reindex, reindex_corpus
from ingestion.sources import Source, discover


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job does, whichever process runs it."""

    kind: JobKind
    corpus: str
    # ingest and upload: the documents, and the source prefixes they cover whole
    sources: Sequence[Source] = ()
    prune_under: Sequence[str] = ()
    # crawl: the start URLs and the crawl's settings (the server's, with the request's limits)
    urls: Sequence[str] = ()
    crawl: CrawlSettings | None = None
    # reindex: the new model and chunker (None: the corpus's own)
    model: str | None = None
    chunk_tokens: int | None = None
    chunk_overlap_tokens: int | None = None
    # the job whose failed documents this one runs again
    retry_of: str | None = None

    @property
    def shared(self) -> bool:
        """Whether several workers can share it, document by document (else one worker runs it)."""
        return self.kind in (JobKind.INGEST, JobKind.UPLOAD)

    def params(self) -> dict[str, Any]:
        """What a worker needs to run a crawl or a re-index, as JSON."""
        if self.kind == JobKind.CRAWL:
            assert self.crawl is not None
            return crawl_params(self.urls, self.crawl)
        return {
            "model": self.model,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap_tokens": self.chunk_overlap_tokens,
        }

    @classmethod
    def of_row(cls, row: IngestionJobRow, corpus: str) -> JobSpec:
        """The crawl or re-index a job's row describes (what it recorded it was asked)."""
        kind, params = JobKind(row.kind), row.params or {}
        if kind == JobKind.CRAWL:
            return cls(
                kind=kind,
                corpus=corpus,
                urls=params["urls"],
                crawl=CrawlSettings.model_validate(params["crawl"]),
                retry_of=row.retry_of,
            )
        return cls(
            kind=kind,
            corpus=corpus,
            model=params.get("model"),
            chunk_tokens=params.get("chunk_tokens"),
            chunk_overlap_tokens=params.get("chunk_overlap_tokens"),
            retry_of=row.retry_of,
        )


class Starter(Protocol):
    """Starts ``run(job_id)`` in this process and returns the job's ID at once (the API's job runner)."""

    def __call__(
        self,
        run: Callable[[str], Awaitable[object]],
        *,
        corpus: str,
        corpus_id: str,
        kind: JobKind,
        documents_total: int,
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class Submitted:
    job_id: str
    state: JobState  # queued: on the Redis queue, or accepted by this process and about to start
    on_queue: bool


async def submit_job(
    resources: Resources, spec: JobSpec, *, start: Starter | None = None, queue: bool | None = None
) -> Submitted:
    """Run ``spec`` on the queue's workers, or in this process through ``start``.

    ``queue`` None: on the queue when one is configured. True: on the queue, or
    :class:`ConfigurationError` when none is. False: in this process.
    """
    on_queue = resources.queue is not None if queue is None else queue
    if spec.kind == JobKind.REINDEX:
        # Refused now rather than by the worker: a job of the corpus running, a model that cannot load.
        await check_can_reindex(resources, spec.corpus, model=spec.model)
    if on_queue:
        if resources.queue is None:
            raise ConfigurationError("no job queue is configured: set LORE_QUEUE__REDIS_URL")
        if spec.shared:
            job_id = await enqueue_sources(
                resources,
                spec.sources,
                corpus=spec.corpus,
                kind=spec.kind,
                prune_under=spec.prune_under,
                retry_of=spec.retry_of,
            )
        else:
            job_id = await _enqueue_whole(resources, spec)
        return Submitted(job_id=job_id, state=JobState.QUEUED, on_queue=True)
    if start is None:
        raise ConfigurationError(
            f"a {spec.kind} job can only run on the queue here: set LORE_QUEUE__REDIS_URL"
        )
    async with resources.sessions() as session:
        corpus = await get_or_create_corpus(session, spec.corpus)
        await session.commit()

    async def run(job_id: str) -> object:
        return await run_job(resources, spec, job_id=job_id)

    job_id = start(
        run, corpus=spec.corpus, corpus_id=corpus.id, kind=spec.kind, documents_total=len(spec.sources)
    )
    return Submitted(job_id=job_id, state=JobState.QUEUED, on_queue=False)


async def _enqueue_whole(resources: Resources, spec: JobSpec) -> str:
    """Record a crawl or re-index as queued with what it needs, for one worker to run."""
    async with resources.sessions() as session:
        corpus = await get_or_create_corpus(session, spec.corpus)
        await refuse_while_reindexing(session, corpus)
        job = await jobs.start_job(
            session,
            corpus_id=corpus.id,
            kind=spec.kind,
            state=JobState.QUEUED,
            worker=QUEUE_WORKER,
            params=spec.params(),
            retry_of=spec.retry_of,
        )
        await session.commit()
    await put_on_queue(resources, job.id, copies=1)
    return job.id


async def run_job(
    resources: Resources, spec: JobSpec, *, job_id: str | None = None, progress: Progress | None = None
) -> IngestSummary | ReindexSummary:
    """Run ``spec`` to its end in this process; its summary."""
    if spec.kind == JobKind.CRAWL:
        return await crawl(
            resources,
            spec.urls,
            corpus=spec.corpus,
            settings=spec.crawl,
            ingest_progress=progress,
            job_id=job_id,
            retry_of=spec.retry_of,
        )
    if spec.kind == JobKind.REINDEX:
        return await reindex_corpus(
            resources,
            spec.corpus,
            model=spec.model,
            chunk_tokens=spec.chunk_tokens,
            chunk_overlap_tokens=spec.chunk_overlap_tokens,
            progress=progress,
            job_id=job_id,
            retry_of=spec.retry_of,
        )
    return await ingest_sources(
        resources,
        spec.sources,
        corpus=spec.corpus,
        progress=progress,
        prune_under=spec.prune_under,
        kind=spec.kind,
        job_id=job_id,
        retry_of=spec.retry_of,
    )


async def retry_spec(resources: Resources, job_id: str) -> JobSpec:
    """A job of the documents ``job_id`` failed, and only those, linked to it (``retry_of``).

    An ingest re-reads its failed files (a file gone since fails again, with that reason); a crawl
    fetches its failed pages again, following no links; a failed re-index runs again whole. An
    upload's files are not kept once they failed: they must be sent again. Raises
    :class:`ConflictError` for a job still running or with nothing to retry.
    """
    await jobs.mark_interrupted_jobs(resources.sessions)
    async with resources.sessions() as session:
        row = await session.get(IngestionJobRow, job_id)
        corpus = await session.get(CorpusRow, row.corpus_id) if row is not None else None
        if row is None or corpus is None:
            raise NotFoundError(f"no job {job_id!r}")
        state, kind = JobState(row.state), JobKind(row.kind)
        if not state.ended:
            raise ConflictError(f"job {job_id} is {state}: retry it once it has ended")
        if kind == JobKind.REINDEX:
            if state == JobState.SUCCEEDED:
                raise ConflictError(f"re-index {job_id} succeeded: there is nothing to retry")
            return replace(JobSpec.of_row(row, corpus.name), retry_of=job_id)
        outcomes = await jobs.document_outcomes(session, job_id=job_id)
    failed = sorted(src for src, (status, _) in outcomes.items() if status == DocumentStatus.FAILED)
    if not failed:
        raise ConflictError(f"job {job_id} has no failed documents to retry")
    if kind == JobKind.UPLOAD:
        raise ConflictError(
            f"the {len(failed)} failed files of upload {job_id} are not kept: upload them again"
        )
    if kind == JobKind.CRAWL:
        # A crawl recorded before crawls kept what they were asked takes the settings' options.
        asked = JobSpec.of_row(row, corpus.name).crawl if row.params else resources.settings.ingestion.crawl
        assert asked is not None
        only = asked.model_copy(update={"max_depth": 0, "max_pages": len(failed)})
        return JobSpec(kind=kind, corpus=corpus.name, urls=failed, crawl=only, retry_of=job_id)
    return JobSpec(
        kind=kind, corpus=corpus.name, sources=discover([Path(s) for s in failed]), retry_of=job_id
    )


async def run_queued(resources: Resources, job_id: str) -> str:
    """What a worker runs for one queued job of any kind; the job's state as this worker left it."""
    await jobs.mark_interrupted_jobs(resources.sessions)
    async with resources.sessions() as session:
        row = await session.get(IngestionJobRow, job_id)
        corpus = await session.get(CorpusRow, row.corpus_id) if row is not None else None
    if row is None or corpus is None:
        return "gone"
    spec = JobSpec.of_row(row, corpus.name) if row.params is not None else None
    if spec is None or spec.shared:
        # An ingest or upload: its documents are claimed, a few at a time, by every worker on it.
        return await run_queued_job(resources, job_id)
    if row.state not in (JobState.QUEUED, JobState.INTERRUPTED):
        # Ended, or taken up by another worker (an enqueueing arq ran twice).
        return row.state
    try:
        await run_job(resources, spec, job_id=job_id)
    except LoreError as exc:
        # Refused as it started (a job of the corpus running, a model that cannot load): the row,
        # still queued, says why. A job that started records its own failure.
        async with resources.sessions() as session:
            await jobs.finish_job(
                session, job_id=job_id, state=JobState.FAILED, error=exc.message, replace=(JobState.QUEUED,)
            )
            await session.commit()
        if isinstance(exc, BackendError):
            raise  # the queue tries it again once the backend is back
    async with resources.sessions() as session:
        return str(await jobs.job_state(session, job_id=job_id))
