"""One document's way through ingestion, stage by stage: read, extract, chunk, embed, write.

Both runners call these: the in-process pipeline (:mod:`ingestion.pipeline`) and the queued
workers (:mod:`ingestion.queued`). :func:`prepare_document` reads, checks, extracts and chunks one
document; :func:`embed_and_write` embeds the chunks of several documents together and upserts
them; :func:`finish_document` then drops each document's stale chunks and records its row. Each
document keeps the stage it reached, the time each stage took, and on failure the stage and why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from core import ids, tables
from core.db.models import DocumentBlocksRow, DocumentFileRow, DocumentRow, utcnow
from core.errors import BackendError, ExtractionError, LoreError
from core.resources import Resources
from core.types import Chunk, ChunkPoint, Location
from ingestion.chunking import CHUNKER_VERSION, chunk_blocks
from ingestion.corpus_index import CorpusIndex, chunk_budget
from ingestion.extract import Block, ExtractedDocument, content_type, extract, kind_of
from ingestion.formats.document import pack_blocks
from ingestion.formats.ocr import OcrOptions
from ingestion.jobs import DocumentStage, DocumentStatus
from ingestion.sources import Source

log = logging.getLogger("lore.ingestion")


@dataclass(slots=True)
class DocumentWork:
    """One document between the stages: prepared (chunks to write), or already settled (status)."""

    src: Source
    doc_id: str
    status: DocumentStatus | None = None  # unchanged or failed when the prepare stage settled it
    error: str | None = None
    # The stage it is in (once written: the last one); on failure, the stage that failed.
    stage: DocumentStage = DocumentStage.READ
    timings_ms: dict[str, float] = field(default_factory=dict)
    attempts: int = 1  # tries of its embedding and writing (a store or database outage is retried)
    chunks: list[Chunk] = field(default_factory=list)
    title: str = ""
    pages: int | None = None
    digest: str = ""
    blocks: bytes = b""  # the extracted blocks, packed for the database
    original: bytes = b""  # the bytes it was read from, kept for GET /v1/documents/{id}/file
    ocr_pages: int = 0  # its pages that OCR read
    existed: bool = False

    @contextmanager
    def stage_of(self, stage: DocumentStage) -> Iterator[None]:
        """Time ``stage``; the document is in it until the block ends (and stays there if it fails)."""
        self.stage = stage
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[stage] = round(
                self.timings_ms.get(stage, 0.0) + (time.perf_counter() - started) * 1000, 1
            )

    def fail(self, reason: str) -> None:
        self.status, self.error, self.chunks = DocumentStatus.FAILED, reason, []

    @property
    def written(self) -> int:
        """Chunks written for it (none when it was unchanged or failed)."""
        return len(self.chunks) if self.status is not None and self.status.written else 0


async def prepare_document(resources: Resources, src: Source, index: CorpusIndex) -> DocumentWork:
    """Read, check, extract and chunk one document. Never raises for a bad file (it comes back failed)."""
    corpus, signature = index.corpus, index.signature
    work = DocumentWork(src=src, doc_id=ids.document_id(corpus.name, src.source))
    try:
        with work.stage_of(DocumentStage.READ):
            if src.error is not None:
                raise ExtractionError(src.error)
            if src.not_modified:
                async with resources.sessions() as session:
                    indexed = await session.get(DocumentRow, work.doc_id)
                if indexed is None or indexed.index_signature != signature:
                    raise ExtractionError(
                        "not modified since it was fetched, but not indexed: fetch it in full"
                    )
                work.status = DocumentStatus.UNCHANGED
                return work
            size = src.size()
            limit = resources.settings.ingestion.max_file_bytes
            if size > limit:
                raise ExtractionError(f"the file has {size} bytes, over the limit of {limit}")
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
                work.status = DocumentStatus.UNCHANGED
                return work
        doc = await asyncio.to_thread(_extract, resources, work, data)
        work.title, work.pages, work.ocr_pages, work.original = doc.title, doc.pages, doc.ocr_pages, data
        work.chunks, work.blocks = await asyncio.to_thread(_chunk, index, work, doc)
    except BackendError:
        # A store or database outage is the job's failure, not the document's: the job stops and
        # a re-run resumes it.
        raise
    except (LoreError, OSError) as exc:
        work.fail(exc.message if isinstance(exc, LoreError) else f"{type(exc).__name__}: {exc}")
    return work


def _extract(resources: Resources, work: DocumentWork, data: bytes) -> ExtractedDocument:
    """The document's text blocks (CPU work, in a thread)."""
    with work.stage_of(DocumentStage.EXTRACT):
        try:
            settings = resources.settings.ingestion
            return extract(
                work.src.name, data, max_bytes=settings.max_file_bytes, ocr=OcrOptions.of(settings)
            )
        except LoreError:
            raise
        except Exception as exc:
            # A parser bug on one odd file must fail that document, never the job.
            raise ExtractionError(f"the file could not be read: {type(exc).__name__}: {exc}") from exc


def _chunk(index: CorpusIndex, work: DocumentWork, doc: ExtractedDocument) -> tuple[list[Chunk], bytes]:
    """The document's chunks, and its blocks packed for the database (CPU work, in a thread)."""
    with work.stage_of(DocumentStage.CHUNK):
        src = work.src
        chunks = make_chunks(
            index,
            doc.blocks,
            doc_id=work.doc_id,
            source=src.source,
            title=doc.title,
            doc_type=kind_of(src.name),
            modified=int((src.modified or utcnow()).timestamp()),
        )
        return chunks, pack_blocks(doc.blocks)


async def embed_and_write(resources: Resources, index: CorpusIndex, works: Sequence[DocumentWork]) -> None:
    """Embed and upsert the chunks of the prepared ``works`` together (embedders are fastest on full
    batches). A store that refuses them fails those documents; an outage is raised (the job stops)."""
    to_write = [w for w in works if w.status is None]
    if not to_write:
        return
    started = time.perf_counter()
    for work in to_write:
        work.stage = DocumentStage.EMBED
    try:
        await _retrying(
            resources,
            to_write,
            lambda: write_chunks(resources, index, [c for w in to_write for c in w.chunks]),
        )
    except BackendError:
        raise
    except LoreError as exc:
        for work in to_write:
            work.fail(exc.message)
    # The batch's time, shared by its documents in proportion to their chunks.
    elapsed_ms = (time.perf_counter() - started) * 1000
    total = sum(len(w.chunks) for w in to_write) or 1
    for work in to_write:
        work.timings_ms[DocumentStage.EMBED] = round(elapsed_ms * len(work.chunks) / total, 1)


async def finish_document(resources: Resources, work: DocumentWork, index: CorpusIndex) -> None:
    """After its new chunks are written: drop the document's stale chunks, then record it.

    Sets ``work.status``: new or changed, or failed when the database refuses the document; its
    points are then deleted, so none is left that no recorded document accounts for.
    """
    with work.stage_of(DocumentStage.WRITE):
        try:
            await _retrying(resources, [work], lambda: _record_row(resources, work, index))
        except Exception as exc:
            # Unrecorded, the points could be neither found nor deleted through Lore. A changed
            # document keeps its old row, whose content hash no longer matches: the next run redoes it.
            await resources.store.delete_document(index.collection, work.doc_id)
            if _is_outage(exc):
                raise BackendError(f"the database is unavailable: {_first_line(exc)}") from exc
            work.fail(f"the database refused the document: {_first_line(exc)}")
            return
    work.status = DocumentStatus.CHANGED if work.existed else DocumentStatus.NEW


async def _record_row(resources: Resources, work: DocumentWork, index: CorpusIndex) -> None:
    """Drop the document's stale chunks (only now that the new ones are safely written), then store
    its row and its extracted blocks."""
    await resources.store.delete_document(
        index.collection, work.doc_id, keep_chunk_ids={c.id for c in work.chunks}
    )
    async with resources.sessions() as session:
        row = await session.get(DocumentRow, work.doc_id)
        if row is None:
            row = DocumentRow(id=work.doc_id, corpus_id=index.corpus.id, source=work.src.source)
            session.add(row)
        row.title, row.content_hash, row.index_signature = work.title, work.digest, index.signature
        row.chunk_count, row.pages, row.ocr_pages = len(work.chunks), work.pages, work.ocr_pages
        await session.flush()
        # The extracted text, so a re-index can re-chunk without the source.
        await session.merge(DocumentBlocksRow(document_id=work.doc_id, data=work.blocks))
        # The original, so a citation can be opened in it, wherever the source has gone since.
        await session.merge(
            DocumentFileRow(
                document_id=work.doc_id,
                name=work.src.name,
                content_type=content_type(work.src.name),
                size=len(work.original),
                data=work.original,
            )
        )
        await session.commit()


async def _retrying(
    resources: Resources, works: Sequence[DocumentWork], op: Callable[[], Awaitable[None]]
) -> None:
    """Run ``op``, again after a pause when a backend fails (an outage), up to ``ingestion.retries``
    times; each try counts on ``works``. What is not an outage is raised at once."""
    settings = resources.settings.ingestion
    for attempt in range(settings.retries + 1):
        try:
            await op()
            return
        except Exception as exc:
            if attempt == settings.retries or not _is_outage(exc):
                raise
            wait = settings.retry_backoff_s * 2**attempt
            log.warning(
                "%s (try %d of %d): trying again in %.1f s",
                _first_line(exc),
                attempt + 1,
                settings.retries + 1,
                wait,
            )
            for work in works:
                work.attempts += 1
            await asyncio.sleep(wait)


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
            location=Location(piece.spans, piece.boxes, piece.anchor),
        )
        for i, piece in enumerate(pieces)
    ]


# Characters of a chunk's context header (document title, section heading) at most; its tokens
# are kept free in each chunk's budget (corpus_index.HEADER_TOKENS, about 4 characters a token).
_HEADER_CHARS = 160


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
    text = _table_for_embedding(chunk.text)
    return f"{header}\n\n{text}" if header else text


def _table_for_embedding(text: str) -> str:
    """A Markdown table's text as the embedder and BM25 should read it: without the ``| --- |``
    rule and the pipes around cells (each a token of the chunk's budget, and noise), its non-empty
    cells kept apart by semicolons. Other text as it is."""
    if not tables.holds_table(text):
        return text
    lines = []
    for line in text.split("\n"):
        if tables.is_rule(line):
            continue
        lines.append("; ".join(c for c in tables.cells(line) if c) if tables.is_row(line) else line)
    return "\n".join(lines)


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
