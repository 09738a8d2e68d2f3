"""Ingestion of local files into a corpus: discover, extract, chunk, embed, upsert, record.

Idempotent and incremental: document IDs come from the corpus and source path, chunk IDs from
content, so re-running is always safe; unchanged files are skipped without embedding; a changed
file's new chunks are written before its stale ones are deleted, so a crash at any point leaves
a state that the next run repairs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Sequence, Sized
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import ids
from core.components.embedding import Embedder
from core.db.models import (
    CorpusRow,
    DocumentBlocksRow,
    DocumentRow,
    IngestionJobRow,
    JobDocumentRow,
    utcnow,
)
from core.errors import (
    BackendError,
    ConflictError,
    ExtractionError,
    LoreError,
    NotFoundError,
)
from core.indexing import IndexConfig, collection_alias, collection_name
from core.resources import Resources
from core.types import Chunk, ChunkPoint
from ingestion.chunking import CHUNKER_VERSION, chunk_blocks
from ingestion.extract import SUPPORTED_SUFFIXES, Block, ExtractedDocument, extract, kind_of
from ingestion.formats.document import pack_blocks


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
    seconds: float = 0.0
    state: str = "running"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Source:
    """One document to ingest: a file on disk, or bytes already fetched (an upload, a crawled page).

    ``source`` is its URI (absolute path or URL), from which the document ID derives; ``name`` is
    the file name whose suffix picks the extractor. ``not_modified`` marks a document its fetcher
    found unchanged since it was indexed (an HTTP 304): there are no bytes to read.
    """

    source: str
    name: str
    path: Path | None = None
    data: bytes | None = None
    not_modified: bool = False
    # The source's own modification time when its fetcher knows it (a file's mtime, a page's
    # Last-Modified header); chunks carry it as the document's date for search filters.
    modified: datetime | None = None

    # Why its fetcher could not get it (a crawl's refused or failed URL): it fails with this reason,
    # so the job records it as it records any document that failed.
    error: str | None = None

    @classmethod
    def from_path(cls, path: Path) -> Source:
        resolved = path.resolve()
        mtime = datetime.fromtimestamp(resolved.stat().st_mtime, tz=UTC)
        return cls(source=str(resolved), name=resolved.name, path=resolved, modified=mtime)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    async def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return await asyncio.to_thread(self.path.read_bytes)


def discover(paths: Iterable[Path]) -> list[Source]:
    """Files to ingest: supported files under each directory, and each file named directly.

    A file named directly is always taken (an unsupported or missing one then fails with its reason,
    never the rest); inside directories, hidden entries and unsupported types are passed over.
    """
    found: dict[str, Source] = {}
    for path in paths:
        if not path.exists():
            resolved = path.resolve()
            src = Source(
                source=str(resolved),
                name=resolved.name,
                path=resolved,
                error=f"no such file or directory: {path}",
            )
            found.setdefault(src.source, src)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    src = Source.from_path(child)
                    found.setdefault(src.source, src)
        else:
            src = Source.from_path(path)
            found.setdefault(src.source, src)
    return list(found.values())


def index_signature(config: IndexConfig, embedder: Embedder) -> str:
    """What the stored chunks depend on besides the file: a change re-indexes every document."""
    return f"{CHUNKER_VERSION}:{chunk_budget(config, embedder)}:{config.chunk_overlap_tokens}:{config.model}"


def chunk_budget(config: IndexConfig, embedder: Embedder) -> int:
    """Tokens per chunk: the corpus's setting, capped by what its embedder reads without truncating
    (with room for the context header, see embedding_text)."""
    return min(config.chunk_tokens, embedder.max_tokens - embedder.special_tokens - HEADER_TOKENS)


@dataclass(frozen=True, slots=True)
class CorpusIndex:
    """Where and how a corpus's chunks are made and kept: a collection, its config and its embedder."""

    corpus: CorpusRow
    collection: str
    config: IndexConfig
    embedder: Embedder

    @property
    def signature(self) -> str:
        return index_signature(self.config, self.embedder)


async def corpus_index(resources: Resources, corpus: str) -> CorpusIndex:
    """The serving index of ``corpus`` (created if new); a corpus's first ingest makes generation 1.

    Generation 1 takes the settings' model and chunker config; only `lore reindex` changes them.
    """
    async with resources.sessions() as session:
        row = await get_or_create_corpus(session, corpus)
        await session.commit()
    if row.collection is None:
        row = await _first_generation(resources, row)
    config = IndexConfig.of(row, resources.settings)
    embedder = await resources.embedder_for(config.model)
    assert row.collection is not None
    if await resources.store.ensure_collection(row.collection, dim=embedder.dim):
        # The collection was gone (deleted by hand): none of the corpus's chunks are there any more.
        await _forget_signatures(resources, row.id)
    return CorpusIndex(row, row.collection, config, embedder)


async def _first_generation(resources: Resources, corpus: CorpusRow) -> CorpusRow:
    config = IndexConfig.defaults(resources.settings)
    collection = collection_name(corpus.name, 1)
    embedder = await resources.embedder_for(config.model)
    await resources.store.ensure_collection(collection, dim=embedder.dim)
    await resources.store.set_alias(collection_alias(corpus.name), collection)
    async with resources.sessions() as session:
        claimed = await session.execute(
            update(CorpusRow)
            .where(CorpusRow.id == corpus.id, CorpusRow.collection.is_(None))
            .values(
                collection=collection,
                generation=1,
                embedding_model=config.model,
                chunk_tokens=config.chunk_tokens,
                chunk_overlap_tokens=config.chunk_overlap_tokens,
            )
        )
        await session.commit()
        row = await session.get(CorpusRow, corpus.id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"corpus {corpus.name!r} was deleted meanwhile")
    if claimed.rowcount:  # type: ignore[attr-defined]
        # Documents an older Lore indexed before corpora had collections have no chunks here.
        await _forget_signatures(resources, corpus.id)
    return row


async def _forget_signatures(resources: Resources, corpus_id: str) -> None:
    """Make the next ingest re-embed every document of the corpus."""
    async with resources.sessions() as session:
        await session.execute(
            update(DocumentRow).where(DocumentRow.corpus_id == corpus_id).values(index_signature="")
        )
        await session.commit()


async def refuse_while_reindexing(session: AsyncSession, corpus: CorpusRow) -> None:
    """Raise ConflictError while a re-index of ``corpus`` runs: what an ingest wrote would be lost."""
    running = await session.scalar(
        select(IngestionJobRow.id).where(
            IngestionJobRow.corpus_id == corpus.id,
            IngestionJobRow.kind == "reindex",
            IngestionJobRow.state == "running",
        )
    )
    if running is not None:
        raise ConflictError(
            f"corpus {corpus.name!r} is being re-indexed (job {running}): ingest into it once that job ends"
        )


async def get_or_create_corpus(session: AsyncSession, name: str) -> CorpusRow:
    """The corpus named ``name``, made first when there is none (the name must then pass the rule)."""
    row = (await session.execute(select(CorpusRow).where(CorpusRow.name == name))).scalar_one_or_none()
    if row is None:
        row = CorpusRow(id=str(uuid.uuid4()), name=ids.check_corpus_name(name), version=0)
        session.add(row)
        await session.flush()
    return row


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
    kind: str = "ingest",
    job_id: str | None = None,
) -> IngestSummary:
    """Ingest ``sources`` into ``corpus`` as one job (``job_id``, else a new ID) and return what changed.

    ``sources`` may be a stream (an async iterator a crawler feeds): they are taken as the
    pipeline has room for them, so a job's memory stays bounded however many it has.
    ``prune_under`` lists source prefixes this run covers whole: documents under them that the
    run did not see are gone from their source and get deleted once the grace has passed. The
    job stops between documents when someone asks to cancel it.
    """
    started = time.perf_counter()
    total = len(sources) if isinstance(sources, Sized) else 0
    await mark_interrupted_jobs(resources.sessions)
    index = await corpus_index(resources, corpus)
    corpus_row = index.corpus
    async with resources.sessions() as session:
        await refuse_while_reindexing(session, corpus_row)
        job = IngestionJobRow(
            id=job_id or str(uuid.uuid4()),
            corpus_id=corpus_row.id,
            kind=kind,
            state="running",
            documents_total=total,
            heartbeat_at=utcnow(),
            worker=this_worker(),
        )
        session.add(job)
        await session.commit()
    summary = IngestSummary(job_id=job.id, corpus=corpus)
    if progress:
        progress.start(total)
    run = _JobRun(resources, job.id, index, summary, progress, total)
    try:
        state = await run.execute(sources)
        if state == "succeeded" and prune_under:
            summary.documents_deleted = await _prune_gone(resources, corpus_row, prune_under, run.seen)
        if summary.chunks_embedded:
            # Index what was written, so searches stop scanning the new points one by one.
            await resources.store.optimize(index.collection)
    except BaseException as exc:
        # A task cancelled from outside (an admin's cancel, a shutdown) is no failure of the job:
        # whoever cancelled it may record a more precise state over this one.
        cancelled = isinstance(exc, asyncio.CancelledError)
        state = "cancelled" if cancelled else "failed"
        error = "stopped while it ran (cancelled or shut down)" if cancelled else repr(exc)
        async with resources.sessions() as session:
            await _save_counts(session, job.id, summary, state=state, error=error, total=run.total)
            await session.commit()
        raise
    summary.seconds = round(time.perf_counter() - started, 3)
    async with resources.sessions() as session:
        if summary.documents_new or summary.documents_changed or summary.documents_deleted:
            await session.execute(
                update(CorpusRow).where(CorpusRow.id == corpus_row.id).values(version=CorpusRow.version + 1)
            )
        await _save_counts(session, job.id, summary, state=state, total=run.total)
        await session.commit()
    summary.state = state
    return summary


@dataclass(slots=True)
class _Work:
    """One document between the stages: prepared (chunks to write), or already settled (status)."""

    src: Source
    doc_id: str
    status: str | None = None  # "unchanged" or "failed" when the prepare stage settled it
    error: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    title: str = ""
    pages: int | None = None
    digest: str = ""
    blocks: bytes = b""  # the extracted blocks, packed for the database
    existed: bool = False


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

    async def execute(self, sources: Iterable[Source] | AsyncIterable[Source]) -> str:
        """Run every stage to the end; "succeeded", or "cancelled" when asked to stop."""
        settings = self.resources.settings.ingestion
        queue: asyncio.Queue[_Work | _Abort | None] = asyncio.Queue(maxsize=settings.queue_documents)
        producer = asyncio.create_task(self._prepare_all(_as_async(sources), queue, settings.extract_workers))
        try:
            return await self._write_all(queue)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def _prepare_all(
        self, feed: AsyncIterator[Source], queue: asyncio.Queue[_Work | _Abort | None], workers: int
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
                await queue.put(await _prepare_one(self.resources, src, self.index))

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(prepare())
        except BaseExceptionGroup as failed:
            await queue.put(_Abort(_first_error(failed)))
            return
        await queue.put(None)

    async def _write_all(self, queue: asyncio.Queue[_Work | _Abort | None]) -> str:
        batch_chunks = self.resources.settings.embedding.batch_size * 4
        done = False
        while not done:
            batch: list[_Work] = []
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
                return "cancelled"
        return "succeeded"

    async def _write_batch(self, batch: list[_Work]) -> bool:
        """Embed, write and record ``batch``; True when the job has been asked to stop."""
        to_write = [w for w in batch if w.status is None]
        if to_write:
            try:
                await write_chunks(self.resources, self.index, [c for w in to_write for c in w.chunks])
            except BackendError:
                raise
            except LoreError as exc:
                for work in to_write:
                    work.status, work.error = "failed", exc.message
        # A cancel takes effect after the whole batch: its chunks are written, so each of its
        # documents is finished (stale chunks dropped, row recorded) rather than left half done.
        cancelled = False
        for work in batch:
            if work.status is None:
                await _finish_one(self.resources, work, self.index)
            cancelled = await self._record(work) or cancelled
        return cancelled

    async def _record(self, work: _Work) -> bool:
        """Count and store one document's outcome; True when the job has been asked to stop."""
        assert work.status is not None
        written = len(work.chunks) if work.status in ("new", "changed") else 0
        summary = self.summary
        setattr(summary, f"documents_{work.status}", getattr(summary, f"documents_{work.status}") + 1)
        summary.chunks_embedded += written
        async with self.resources.sessions() as session:
            session.add(
                JobDocumentRow(
                    job_id=self.job_id,
                    source=work.src.source,
                    status=work.status,
                    chunks=written,
                    error=work.error,
                )
            )
            await _save_counts(session, self.job_id, summary, state="running", total=self.total)
            await session.commit()
            cancelled = bool(
                await session.scalar(
                    select(IngestionJobRow.cancel_requested).where(IngestionJobRow.id == self.job_id)
                )
            )
        if self.progress:
            self.progress.advance(work.src.source, work.status, written)
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


# A running job whose heartbeat is older than this was killed (heartbeats come after every document).
STALE_HEARTBEAT = timedelta(minutes=10)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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


async def mark_interrupted_jobs(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Mark 'running' jobs whose process is gone as interrupted.

    A process on this host is checked directly; elsewhere a heartbeat older than
    ``STALE_HEARTBEAT`` means its process died.
    """
    async with sessions() as session:
        running = (
            await session.execute(select(IngestionJobRow).where(IngestionJobRow.state == "running"))
        ).scalars()
        dead = [job for job in running if _is_dead(job.worker, job.heartbeat_at)]
        for job in dead:
            job.state, job.finished_at = "interrupted", utcnow()
            job.error = "the process running the job stopped; run the same command again to resume"
        await session.commit()
    return len(dead)


async def request_cancel(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    """Ask a running job to stop after the documents it is writing; a queued one stops at once."""
    async with sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        if job.state == "queued":
            # No worker has taken it yet: none will.
            job.state, job.finished_at, job.error = "cancelled", utcnow(), "cancelled before a worker took it"
        elif job.state != "running":
            raise ConflictError(f"job {job_id} is {job.state}, not running")
        job.cancel_requested = True
        await session.commit()


async def _prune_gone(
    resources: Resources, corpus: CorpusRow, prefixes: Sequence[str], seen: set[str]
) -> int:
    """Retire the corpus's documents under ``prefixes`` that this run did not see."""
    async with resources.sessions() as session:
        rows = (
            await session.execute(select(DocumentRow).where(DocumentRow.corpus_id == corpus.id))
        ).scalars()
        under = [row for row in rows if row.source.startswith(tuple(prefixes))]
        deleted = await _apply_grace(
            resources,
            session,
            collection=corpus.collection,
            gone=[r for r in under if r.source not in seen],
            present=[r for r in under if r.source in seen],
        )
        await session.commit()
    return deleted


async def retire_sources(
    resources: Resources, *, corpus: str, gone: Collection[str], present: Collection[str] = ()
) -> int:
    """Documents gone from their source (e.g. pages a crawl found gone) start, or finish, their grace.

    Documents in ``present`` are back: their grace is cleared. Returns how many were deleted.
    """
    async with resources.sessions() as session:
        corpus_row = (
            await session.execute(select(CorpusRow).where(CorpusRow.name == corpus))
        ).scalar_one_or_none()
        if corpus_row is None:
            return 0
        ids_of = {ids.document_id(corpus, s): s for s in (*gone, *present)}
        rows = (
            await session.execute(select(DocumentRow).where(DocumentRow.id.in_(sorted(ids_of))))
        ).scalars()
        by_source = {row.source: row for row in rows}
        deleted = await _apply_grace(
            resources,
            session,
            collection=corpus_row.collection,
            gone=[by_source[s] for s in gone if s in by_source],
            present=[by_source[s] for s in present if s in by_source],
        )
        if deleted:
            corpus_row.version += 1
        await session.commit()
    return deleted


async def _apply_grace(
    resources: Resources,
    session: AsyncSession,
    *,
    collection: str | None,
    gone: Sequence[DocumentRow],
    present: Sequence[DocumentRow],
) -> int:
    """Mark gone documents missing, delete those missing for longer than the grace; clear the present."""
    grace = timedelta(seconds=resources.settings.ingestion.gone_grace_s)
    now = utcnow()
    for row in present:
        row.missing_since = None
    deleted = 0
    for row in gone:
        row.missing_since = row.missing_since or now
        if now - row.missing_since >= grace:
            if collection is not None:
                await resources.store.delete_document(collection, row.id)
            await session.delete(row)
            deleted += 1
    return deleted


async def _save_counts(
    session: AsyncSession,
    job_id: str,
    summary: IngestSummary,
    *,
    state: str,
    total: int,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {
        "state": state,
        "documents_total": total,
        "documents_new": summary.documents_new,
        "documents_changed": summary.documents_changed,
        "documents_unchanged": summary.documents_unchanged,
        "documents_failed": summary.documents_failed,
        "documents_deleted": summary.documents_deleted,
        "chunks_embedded": summary.chunks_embedded,
        "heartbeat_at": utcnow(),
        "error": error,
    }
    if state != "running":
        values["finished_at"] = utcnow()
    await session.execute(update(IngestionJobRow).where(IngestionJobRow.id == job_id).values(**values))


async def _prepare_one(resources: Resources, src: Source, index: CorpusIndex) -> _Work:
    """Read, check and chunk one document. Never raises for a bad file (it comes back failed)."""
    corpus, signature = index.corpus, index.signature
    work = _Work(src=src, doc_id=ids.document_id(corpus.name, src.source))
    try:
        if src.error is not None:
            raise ExtractionError(src.error)
        if src.not_modified:
            async with resources.sessions() as session:
                indexed = await session.get(DocumentRow, work.doc_id)
            if indexed is None or indexed.index_signature != signature:
                raise ExtractionError("not modified since it was fetched, but not indexed: fetch it in full")
            work.status = "unchanged"
            return work
        size = src.size()
        if size > resources.settings.ingestion.max_file_bytes:
            raise ExtractionError(
                f"the file has {size} bytes, over the limit of {resources.settings.ingestion.max_file_bytes}"
            )
        data = await src.read()
        work.digest = ids.content_hash(data)
        async with resources.sessions() as session:
            existing = await session.get(DocumentRow, work.doc_id)
        work.existed = existing is not None
        if (
            existing is not None
            and existing.content_hash == work.digest
            and existing.index_signature == signature
        ):
            work.status = "unchanged"
            return work
        work.chunks, doc, work.blocks = await asyncio.to_thread(
            _prepare_chunks, resources, index, src, work.doc_id, data
        )
        work.title, work.pages = doc.title, doc.pages
    except BackendError:
        # A store or database outage is the job's failure, not the document's: the job stops and
        # a re-run resumes it.
        raise
    except (LoreError, OSError) as exc:
        work.status = "failed"
        work.error = exc.message if isinstance(exc, LoreError) else f"{type(exc).__name__}: {exc}"
        work.chunks = []
    return work


async def _finish_one(resources: Resources, work: _Work, index: CorpusIndex) -> None:
    """After its new chunks are written: drop the document's stale chunks, then record it.

    Sets ``work.status``: "new" or "changed", or "failed" when the database refuses the document;
    its points are then deleted, so none is left that no recorded document accounts for.
    """
    # Stale chunks go only after the new ones are safely written.
    await resources.store.delete_document(
        index.collection, work.doc_id, keep_chunk_ids={c.id for c in work.chunks}
    )
    try:
        async with resources.sessions() as session:
            row = await session.get(DocumentRow, work.doc_id)
            if row is None:
                row = DocumentRow(id=work.doc_id, corpus_id=index.corpus.id, source=work.src.source)
                session.add(row)
            row.title, row.content_hash, row.index_signature = work.title, work.digest, index.signature
            row.chunk_count, row.pages = len(work.chunks), work.pages
            await session.flush()
            # The extracted text, so a re-index can re-chunk without the source.
            await session.merge(DocumentBlocksRow(document_id=work.doc_id, data=work.blocks))
            await session.commit()
    except Exception as exc:
        # Unrecorded, the points could be neither found nor deleted through Lore. A changed
        # document keeps its old row, whose content hash no longer matches: the next run redoes it.
        await resources.store.delete_document(index.collection, work.doc_id)
        if _is_outage(exc):
            raise BackendError(f"the database is unavailable: {_first_line(exc)}") from exc
        work.status, work.error = "failed", f"the database refused the document: {_first_line(exc)}"
        work.chunks = []
        return
    work.status = "changed" if work.existed else "new"


def _is_outage(exc: Exception) -> bool:
    """Whether a database error is the database's (down, unreachable) rather than one document's."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    return isinstance(exc, OSError | TimeoutError | BackendError)


def _first_line(exc: Exception) -> str:
    # SQLAlchemy appends the statement and its parameters (the document's text) below the reason.
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
    return reason.strip().split("\n", 1)[0] or type(exc).__name__


def _prepare_chunks(
    resources: Resources, index: CorpusIndex, src: Source, doc_id: str, data: bytes
) -> tuple[list[Chunk], ExtractedDocument, bytes]:
    """Extract and chunk one document; also its blocks packed for the database (CPU work, in a thread)."""
    try:
        doc = extract(src.name, data, max_bytes=resources.settings.ingestion.max_file_bytes)
    except LoreError:
        raise
    except Exception as exc:
        # A parser bug on one odd file must fail that document, never the job.
        raise ExtractionError(f"the file could not be read: {type(exc).__name__}: {exc}") from exc
    chunks = make_chunks(
        index,
        doc.blocks,
        doc_id=doc_id,
        source=src.source,
        title=doc.title,
        doc_type=kind_of(src.name),
        modified=int((src.modified or utcnow()).timestamp()),
    )
    return chunks, doc, pack_blocks(doc.blocks)


def make_chunks(
    index: CorpusIndex,
    blocks: Sequence[Block],
    *,
    doc_id: str,
    source: str,
    title: str,
    doc_type: str = "",
    modified: int | None = None,
) -> list[Chunk]:
    """A document's chunks as the corpus's chunker config and embedder's tokenizer make them.

    ``doc_type`` and ``modified`` (Unix seconds) are the document's format and date, for filters.
    """
    pieces = chunk_blocks(
        blocks,
        index.embedder,
        max_tokens=chunk_budget(index.config, index.embedder),
        overlap_tokens=index.config.chunk_overlap_tokens,
    )
    return [
        Chunk(
            id=ids.chunk_id(doc_id, piece.text, i, CHUNKER_VERSION),
            document_id=doc_id,
            corpus=index.corpus.name,
            ordinal=i,
            text=piece.text,
            source=source,
            title=title,
            page=piece.page,
            headings=piece.headings,
            doc_type=doc_type,
            modified=modified,
        )
        for i, piece in enumerate(pieces)
    ]


# Characters of a chunk's context header (document title, section heading) at most, and the
# tokens kept free for it in each chunk's budget (about 4 characters a token).
_HEADER_CHARS = 160
HEADER_TOKENS = 40


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its text under a header naming its document and section.

    A chunk cut from the middle of a document often never names what it is about; its title and
    heading do (a contextual chunk header). Only the vectors see the header: the stored and shown
    text is the chunk's own. A header part the text already starts with is not repeated.
    """
    parts: list[str] = []
    for part in (chunk.title.strip(), *(h.strip() for h in chunk.headings[-1:])):
        if part and part not in parts and not chunk.text.startswith(part):
            parts.append(part)
    header = " — ".join(parts)[:_HEADER_CHARS]
    return f"{header}\n\n{chunk.text}" if header else chunk.text


async def write_chunks(resources: Resources, index: CorpusIndex, chunks: Sequence[Chunk]) -> None:
    """Embed ``chunks`` (dense with the index's model, BM25 sparse) and upsert them into its collection."""
    batch = resources.settings.embedding.batch_size * 4
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        texts = [embedding_text(c) for c in part]
        dense = await index.embedder.embed(texts)
        sparse = resources.sparse.embed_documents(texts)
        await resources.store.upsert(
            index.collection,
            [ChunkPoint(chunk=c, dense=d, sparse=s) for c, d, s in zip(part, dense, sparse, strict=True)],
        )
