"""In-process ingestion of sources into a corpus: discover, extract, chunk, embed, upsert, record.

Idempotent and incremental: document IDs come from the corpus and source path, chunk IDs from
content, so re-running is always safe; unchanged files are skipped without embedding; a changed
file's new chunks are written before its stale ones are deleted, so a crash at any point leaves
a state that the next run repairs. The stages are :mod:`ingestion.stages`' (the queued workers run
the same ones); the job's life is :mod:`ingestion.jobs`'.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence, Sized
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import update

from core.db.models import CorpusRow
from core.resources import Resources
from ingestion import jobs
from ingestion.corpus_index import CorpusIndex, corpus_index, refuse_while_reindexing
from ingestion.jobs import JobKind, JobState
from ingestion.retire import prune_gone
from ingestion.sources import Source, discover
from ingestion.stages import DocumentWork, embed_and_write, finish_document, prepare_document


class Progress(Protocol):
    """Receives progress as a job runs (the CLI draws a bar from it)."""

    def start(self, total: int) -> None:
        """The number of documents; called again with a larger one while a stream is read."""
        ...

    def advance(self, source: str, status: str, chunks: int) -> None: ...


SUMMARY_COUNTS = (
    "documents_new",
    "documents_changed",
    "documents_unchanged",
    "documents_failed",
    "documents_deleted",
    "chunks_embedded",
    "pages_ocr",
    "seconds",
)


@dataclass(slots=True)
class IngestSummary:
    job_id: str
    corpus: str
    documents_new: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_failed: int = 0
    documents_deleted: int = 0
    chunks_embedded: int = 0
    pages_ocr: int = 0  # pages OCR read (scanned PDF pages, images)
    seconds: float = 0.0
    state: JobState = JobState.RUNNING

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def ingest_paths(
    resources: Resources,
    paths: Sequence[Path],
    *,
    corpus: str,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest files and directories into ``corpus`` and return what changed.

    Documents once ingested from under one of the given directories whose files are gone are
    deleted (after ``ingestion.gone_grace_s``).
    """
    scopes = [f"{p.resolve()}{os.sep}" for p in paths if p.is_dir()]
    return await ingest_sources(
        resources, discover(paths), corpus=corpus, progress=progress, prune_under=scopes
    )


async def ingest_sources(
    resources: Resources,
    sources: Iterable[Source] | AsyncIterable[Source],
    *,
    corpus: str,
    progress: Progress | None = None,
    prune_under: Sequence[str] = (),
    kind: JobKind = JobKind.INGEST,
    job_id: str | None = None,
    params: dict[str, Any] | None = None,
    retry_of: str | None = None,
) -> IngestSummary:
    """Ingest ``sources`` into ``corpus`` as one job (``job_id``, else a new ID) and return what changed.

    ``sources`` may be a stream (an async iterator a crawler feeds): they are taken as the
    pipeline has room for them, so a job's memory stays bounded however many it has.
    ``prune_under`` lists source prefixes this run covers whole: documents under them that the
    run did not see are gone from their source and get deleted once the grace has passed. The
    job stops between documents when someone asks to cancel it. A ``job_id`` recorded as queued
    (a crawl a worker took up) is taken over. ``params`` (what a crawl was asked) and
    ``retry_of`` (the job whose failed documents these are) are recorded on the job.
    """
    started = time.perf_counter()
    total = len(sources) if isinstance(sources, Sized) else 0
    await jobs.mark_interrupted_jobs(resources.sessions)
    index = await corpus_index(resources, corpus)
    corpus_row = index.corpus
    async with resources.sessions() as session:
        await refuse_while_reindexing(session, corpus_row)
        job = await jobs.start_job(
            session,
            corpus_id=corpus_row.id,
            kind=kind,
            job_id=job_id,
            total=total,
            params=params,
            retry_of=retry_of,
        )
        await session.commit()
    summary = IngestSummary(job_id=job.id, corpus=corpus)
    if progress:
        progress.start(total)
    run = _JobRun(resources, job.id, index, summary, progress, total)
    try:
        state = await run.execute(sources)
        if state == JobState.SUCCEEDED and prune_under:
            summary.documents_deleted = await prune_gone(resources, corpus_row, prune_under, run.seen)
        if summary.chunks_embedded:
            # Index what was written, so searches stop scanning the new points one by one.
            await resources.store.optimize(index.collection)
    except BaseException as exc:
        # A task cancelled from outside (an admin's cancel, a shutdown) is no failure of the job:
        # whoever cancelled it may record a more precise state over this one.
        cancelled = isinstance(exc, asyncio.CancelledError)
        async with resources.sessions() as session:
            await jobs.finish_job(
                session,
                job_id=job.id,
                state=JobState.CANCELLED if cancelled else JobState.FAILED,
                error="stopped while it ran (cancelled or shut down)" if cancelled else repr(exc),
            )
            await session.commit()
        raise
    summary.seconds = round(time.perf_counter() - started, 3)
    async with resources.sessions() as session:
        if summary.documents_new or summary.documents_changed or summary.documents_deleted:
            await session.execute(
                update(CorpusRow).where(CorpusRow.id == corpus_row.id).values(version=CorpusRow.version + 1)
            )
        await jobs.finish_job(
            session, job_id=job.id, state=state, documents_deleted=summary.documents_deleted
        )
        await session.commit()
    summary.state = state
    return summary


@dataclass(frozen=True, slots=True)
class _Abort:
    """The prepare stage failed as a whole (a database outage, a crawler error): the job fails."""

    error: BaseException


class _JobRun:
    """The stages of one job, joined by a bounded queue.

    ``extract_workers`` tasks take sources as there is room, read, hash and skip unchanged ones,
    and extract and chunk in threads; one writer takes the prepared documents, embeds their
    chunks in batches that span documents (dense and BM25 together), upserts them, deletes each
    document's stale chunks, and records the document. Extraction of the next documents thus
    overlaps embedding and writing, and at most ``queue_documents`` chunked documents wait.
    """

    def __init__(
        self,
        resources: Resources,
        job_id: str,
        index: CorpusIndex,
        summary: IngestSummary,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.resources = resources
        self.job_id = job_id
        self.index = index
        self.summary = summary
        self.progress = progress
        self.total = total
        self.sized = total > 0
        self.seen: set[str] = set()

    async def execute(self, sources: Iterable[Source] | AsyncIterable[Source]) -> JobState:
        """Run every stage to the end; succeeded, or cancelled when asked to stop."""
        settings = self.resources.settings.ingestion
        queue: asyncio.Queue[DocumentWork | _Abort | None] = asyncio.Queue(maxsize=settings.queue_documents)
        producer = asyncio.create_task(self._prepare_all(_as_async(sources), queue, settings.extract_workers))
        try:
            return await self._write_all(queue)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def _prepare_all(
        self, feed: AsyncIterator[Source], queue: asyncio.Queue[DocumentWork | _Abort | None], workers: int
    ) -> None:
        lock = asyncio.Lock()

        async def take() -> Source | None:
            async with lock:
                src = await anext(feed, None)
            if src is not None and src.source not in self.seen:
                self.seen.add(src.source)
                if not self.sized:
                    self.total += 1
                    if self.progress:
                        self.progress.start(self.total)
            return src

        async def prepare() -> None:
            while (src := await take()) is not None:
                await queue.put(await prepare_document(self.resources, src, self.index))

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(prepare())
        except BaseExceptionGroup as failed:
            await queue.put(_Abort(_first_error(failed)))
            return
        await queue.put(None)

    async def _write_all(self, queue: asyncio.Queue[DocumentWork | _Abort | None]) -> JobState:
        batch_chunks = self.resources.settings.embedding.batch_size * 4
        done = False
        while not done:
            batch: list[DocumentWork] = []
            item = await queue.get()
            while True:
                if item is None:
                    done = True
                    break
                if isinstance(item, _Abort):
                    raise item.error
                batch.append(item)
                # Take what is already prepared, up to one embedding batch, so small documents
                # (crawled pages) are embedded together rather than a few chunks at a time.
                if sum(len(w.chunks) for w in batch) >= batch_chunks or queue.empty():
                    break
                item = queue.get_nowait()
            if await self._write_batch(batch):
                return JobState.CANCELLED
        return JobState.SUCCEEDED

    async def _write_batch(self, batch: list[DocumentWork]) -> bool:
        """Embed, write and record ``batch``; True when the job has been asked to stop."""
        await embed_and_write(self.resources, self.index, batch)
        # A cancel takes effect after the whole batch: its chunks are written, so each of its
        # documents is finished (stale chunks dropped, row recorded) rather than left half done.
        cancelled = False
        for work in batch:
            if work.status is None:
                await finish_document(self.resources, work, self.index)
            cancelled = await self._record(work) or cancelled
        return cancelled

    async def _record(self, work: DocumentWork) -> bool:
        """Count and store one document's outcome; True when the job has been asked to stop."""
        status = work.status
        assert status is not None
        summary = self.summary
        setattr(summary, status.counter, getattr(summary, status.counter) + 1)
        summary.chunks_embedded += work.written
        summary.pages_ocr += work.ocr_pages if status.written else 0
        async with self.resources.sessions() as session:
            await jobs.record_document(
                session,
                job_id=self.job_id,
                source=work.src.source,
                status=status,
                chunks=work.written,
                error=work.error,
                stage=work.stage,
                timings_ms=work.timings_ms,
                attempts=work.attempts,
                ocr_pages=work.ocr_pages,
                total=self.total,
            )
            await session.commit()
            cancelled = await jobs.cancel_requested(session, job_id=self.job_id)
        if self.progress:
            self.progress.advance(work.src.source, status, work.written)
        return cancelled


async def _as_async(sources: Iterable[Source] | AsyncIterable[Source]) -> AsyncIterator[Source]:
    if isinstance(sources, AsyncIterable):
        async for src in sources:
            yield src
    else:
        for src in sources:
            yield src


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
