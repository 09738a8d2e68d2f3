"""Blue/green re-embedding of a corpus: build generation N+1 beside N, verify it, switch, drop N.

Searches keep answering from generation N while N+1 is built. Each document is re-chunked from
its stored blocks (or, without them, its stored chunk texts are re-embedded) with the new model
and chunker config. The switch is one database transaction that moves the corpus row's pointer
(and, on a Qdrant server, the corpus's alias) and bumps the corpus version, made only once N+1
holds exactly the chunks its documents should have. Generation N is dropped once the searches
that may still read it have finished. A re-index that fails or is cancelled leaves N serving and
drops what it built; one that was killed leaves that to the next attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass

from sqlalchemy import select, update

from core.components.embedding import canonical_model_name
from core.db.models import CorpusRow, DocumentBlocksRow, DocumentRow
from core.errors import BackendError, ConflictError, InvalidInputError, LoreError, NotFoundError
from core.indexing import IndexConfig, collection_alias, collection_name, corpus_collections
from core.resources import Resources
from core.types import Chunk
from ingestion import jobs
from ingestion.corpus_index import CorpusIndex
from ingestion.extract import kind_of
from ingestion.formats.document import unpack_blocks
from ingestion.jobs import DocumentStage, DocumentStatus, JobKind, JobState
from ingestion.pipeline import Progress
from ingestion.stages import make_chunks, write_chunks

REINDEX_SUMMARY = (
    "documents",
    "chunks_embedded",
    "seconds",
    "old_collection",
    "new_collection",
    "model",
    "chunk_tokens",
    "chunk_overlap_tokens",
)
# How long the switch waits for this process's searches still reading the old generation.
SEARCH_WAIT_S = 60.0


@dataclass(slots=True)
class ReindexSummary:
    job_id: str
    corpus: str
    documents: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    old_collection: str | None = None
    new_collection: str = ""
    model: str = ""
    chunk_tokens: int = 0
    chunk_overlap_tokens: int = 0
    state: JobState = JobState.RUNNING
    # Set when the switch happened but the previous collection could not be dropped.
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# Per document: (index signature, chunk count) once generation N+1 serves.
_Built = dict[str, tuple[str, int]]


async def reindex_corpus(
    resources: Resources,
    corpus: str,
    *,
    model: str | None = None,
    chunk_tokens: int | None = None,
    chunk_overlap_tokens: int | None = None,
    progress: Progress | None = None,
    job_id: str | None = None,
    retry_of: str | None = None,
) -> ReindexSummary:
    """Re-embed ``corpus`` into a new generation (model and chunker config default to its current ones).

    Raises NotFoundError for an unknown corpus, ConflictError while another job of the corpus
    runs, ConfigurationError when the model cannot be loaded; a failed verification fails the job.
    """
    started = time.perf_counter()
    await jobs.mark_interrupted_jobs(resources.sessions)
    async with resources.sessions() as session:
        row = (await session.execute(select(CorpusRow).where(CorpusRow.name == corpus))).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no corpus named {corpus!r}")
        query = select(DocumentRow).where(DocumentRow.corpus_id == row.id).order_by(DocumentRow.source)
        documents = (await session.execute(query)).scalars().all()
    current = IndexConfig.of(row, resources.settings)
    config = IndexConfig(
        model=canonical_model_name(model) if model else current.model,
        chunk_tokens=current.chunk_tokens if chunk_tokens is None else chunk_tokens,
        chunk_overlap_tokens=current.chunk_overlap_tokens
        if chunk_overlap_tokens is None
        else chunk_overlap_tokens,
    )
    if config.chunk_tokens < 8 or config.chunk_overlap_tokens < 0:
        raise InvalidInputError("chunk tokens must be at least 8 and the overlap at least 0")
    # The model loads before any job exists: a model that cannot load changes nothing.
    embedder = await resources.embedder_for(config.model)
    new = CorpusIndex(row, collection_name(row.index_key, row.generation + 1), config, embedder)
    params: dict[str, object] = {
        "model": model,
        "chunk_tokens": chunk_tokens,
        "chunk_overlap_tokens": chunk_overlap_tokens,
    }
    job = await _start_job(
        resources, row, total=len(documents), job_id=job_id, params=params, retry_of=retry_of
    )
    summary = ReindexSummary(
        job_id=job,
        corpus=corpus,
        old_collection=row.collection,
        new_collection=new.collection,
        model=config.model,
        chunk_tokens=config.chunk_tokens,
        chunk_overlap_tokens=config.chunk_overlap_tokens,
    )
    if progress:
        progress.start(len(documents))
    try:
        # What a killed attempt built is dropped first; the serving generation never is.
        for leftover in corpus_collections(await resources.store.collections(), row.index_key):
            if leftover != row.collection:
                await resources.store.drop_collection(leftover)
        await resources.store.ensure_collection(new.collection, dim=embedder.dim)
        built = await _build(
            resources, new, documents, old=row.collection, job_id=job, summary=summary, progress=progress
        )
        if built is None:
            await resources.store.drop_collection(new.collection)
            summary.seconds = round(time.perf_counter() - started, 3)
            await _finish(resources, job, JobState.CANCELLED)
            summary.state = JobState.CANCELLED
            return summary
        expected = sum(chunks for _, chunks in built.values())
        # The new generation serves with its indexes built, not by scanning every point.
        await resources.store.optimize(new.collection)
        stored = await resources.store.count(new.collection)
        if stored != expected:
            raise BackendError(
                f"the new collection {new.collection} holds {stored} chunks where the corpus's "
                f"{len(built)} documents have {expected}; the corpus was not switched"
            )
        await _switch(resources, row, new, built, job_id=job)
    except BaseException as exc:
        with suppress(Exception):
            await resources.store.drop_collection(new.collection)
        message = exc.message if isinstance(exc, LoreError) else repr(exc)
        await _finish(resources, job, JobState.FAILED, error=message)
        raise
    summary.note = await _retire(resources, corpus, row.collection)
    summary.seconds = round(time.perf_counter() - started, 3)
    await _finish(resources, job, JobState.SUCCEEDED, error=summary.note)
    summary.state = JobState.SUCCEEDED
    return summary


async def _start_job(
    resources: Resources,
    corpus: CorpusRow,
    *,
    total: int,
    job_id: str | None,
    params: dict[str, object],
    retry_of: str | None,
) -> str:
    """Record the job, refusing while another job of the corpus runs (it would write to generation N).

    A re-index queued for a worker is checked here again, as the worker takes it up.
    """
    async with resources.sessions() as session:
        # On PostgreSQL the row lock makes two jobs starting at once take turns here.
        await session.execute(select(CorpusRow.id).where(CorpusRow.id == corpus.id).with_for_update())
        running = await jobs.running_job(session, corpus_id=corpus.id, besides=job_id)
        if running is not None:
            raise ConflictError(
                f"corpus {corpus.name!r} has a running {running.kind} job ({running.id}): let it finish, "
                f"or cancel it with `lore jobs cancel {running.id}`"
            )
        job = await jobs.start_job(
            session,
            corpus_id=corpus.id,
            kind=JobKind.REINDEX,
            job_id=job_id,
            total=total,
            params=params,
            retry_of=retry_of,
        )
        await session.commit()
        return job.id


async def check_can_reindex(resources: Resources, corpus: str, *, model: str | None = None) -> None:
    """Raise what :func:`reindex_corpus` would raise at its start, before anyone waits on a job.

    ConflictError while a job of the corpus runs; ConfigurationError when ``model`` cannot load
    (it is loaded now, and kept for the job).
    """
    async with resources.sessions() as session:
        row = (await session.execute(select(CorpusRow).where(CorpusRow.name == corpus))).scalar_one_or_none()
        if row is None:
            raise NotFoundError(f"no corpus named {corpus!r}")
        running = await jobs.running_job(session, corpus_id=row.id)
    if running is not None:
        raise ConflictError(
            f"job {running.id} ({running.kind}) of corpus {corpus!r} is running: re-index once it ends"
        )
    if model is not None:
        await resources.embedder_for(model)


async def _build(
    resources: Resources,
    new: CorpusIndex,
    documents: Sequence[DocumentRow],
    *,
    old: str | None,
    job_id: str,
    summary: ReindexSummary,
    progress: Progress | None,
) -> _Built | None:
    """Fill the new collection, document by document; None when the job was cancelled."""
    built: _Built = {}
    pending: list[Chunk] = []
    batch = resources.settings.embedding.batch_size * 4
    for doc in documents:
        chunks, signature = await _document_chunks(resources, new, doc, old=old)
        built[doc.id] = (signature, len(chunks))
        # Chunks of several small documents share a batch: the embedder is fastest on full ones.
        pending.extend(chunks)
        if len(pending) >= batch:
            await write_chunks(resources, new, pending)
            summary.chunks_embedded += len(pending)
            pending = []
        summary.documents += 1
        async with resources.sessions() as session:
            await jobs.record_document(
                session,
                job_id=job_id,
                source=doc.source,
                status=DocumentStatus.CHANGED,
                chunks=len(chunks),
                stage=DocumentStage.EMBED,
            )
            await session.commit()
            cancelled = await jobs.cancel_requested(session, job_id=job_id)
        if progress:
            progress.advance(doc.source, DocumentStatus.CHANGED, len(chunks))
        if cancelled:
            return None
    await write_chunks(resources, new, pending)
    summary.chunks_embedded += len(pending)
    return built


async def _document_chunks(
    resources: Resources, new: CorpusIndex, doc: DocumentRow, *, old: str | None
) -> tuple[list[Chunk], str]:
    """A document's chunks for the new generation, and the index signature they will have."""
    async with resources.sessions() as session:
        stored = await session.get(DocumentBlocksRow, doc.id)
    if stored is not None:
        # The document's format and date are not in its row: they come from its serving chunks.
        serving = await resources.store.chunks(old, document_id=doc.id) if old is not None else []
        chunks = await asyncio.to_thread(_rechunk, new, doc, stored.data, serving[0] if serving else None)
        return chunks, new.signature
    # Without stored blocks its chunks stay as they are, re-embedded: the signature keeps the
    # chunker part it had, so a later ingest re-chunks it from its source if the config changed.
    chunks = await resources.store.chunks(old, document_id=doc.id) if old is not None else []
    chunker = doc.index_signature.split(":", 3)[:3]
    return chunks, ":".join([*chunker, new.config.model])


def _rechunk(new: CorpusIndex, doc: DocumentRow, packed: bytes, serving: Chunk | None) -> list[Chunk]:
    return make_chunks(
        new,
        unpack_blocks(packed),
        doc_id=doc.id,
        source=doc.source,
        title=doc.title,
        doc_type=(serving.doc_type if serving else "") or _doc_type(doc.source),
        modified=(serving.modified if serving else None) or int(doc.updated_at.timestamp()),
    )


def _doc_type(source: str) -> str:
    """A document's format from its source's suffix (chunks made before chunks carried it)."""
    try:
        return kind_of(source)
    except LoreError:
        # a crawled page's URL often has no suffix: crawls read HTML
        return "html" if source.startswith(("http://", "https://")) else ""


async def _switch(
    resources: Resources, corpus: CorpusRow, new: CorpusIndex, built: _Built, *, job_id: str
) -> None:
    """Point the corpus at the new generation in one transaction, if nothing changed it meanwhile."""
    alias = collection_alias(corpus.index_key)
    async with resources.sessions() as session:
        running = await jobs.running_job(session, corpus_id=corpus.id, besides=job_id)
        if running is not None:
            raise ConflictError(f"a {running.kind} job ({running.id}) ran on the corpus during the re-index")
        moved = await session.execute(
            update(CorpusRow)
            .where(CorpusRow.id == corpus.id, CorpusRow.version == corpus.version)
            .values(
                collection=new.collection,
                generation=corpus.generation + 1,
                embedding_model=new.config.model,
                chunk_tokens=new.config.chunk_tokens,
                chunk_overlap_tokens=new.config.chunk_overlap_tokens,
                # Cached answers of the old generation are never served across the switch.
                version=CorpusRow.version + 1,
            )
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            raise ConflictError(
                f"corpus {corpus.name!r} changed while it was re-indexed (an ingest or a delete): "
                "run the re-index again"
            )
        if built:
            await session.execute(
                update(DocumentRow),
                [
                    {"id": doc_id, "index_signature": signature, "chunk_count": chunks}
                    for doc_id, (signature, chunks) in built.items()
                ],
            )
        # The alias moves before the commit: if it cannot, nothing has switched.
        await resources.store.set_alias(alias, new.collection)
        try:
            await session.commit()
        except BaseException:
            if corpus.collection is not None:
                with suppress(Exception):
                    await resources.store.set_alias(alias, corpus.collection)
            raise


async def _retire(resources: Resources, corpus: str, old: str | None) -> str | None:
    """Drop the previous generation once no search can be reading it; says why when it was kept."""
    if old is None:
        return None
    # Other processes' searches that read the old pointer just before the switch get this long.
    await asyncio.sleep(resources.settings.ingestion.reindex_drain_s)
    if not await resources.searches.wait_for_current(corpus, timeout_s=SEARCH_WAIT_S):
        return f"switched; the previous collection {old} was kept for searches still reading it"
    try:
        await resources.store.drop_collection(old)
    except BackendError as exc:
        return f"switched; the previous collection {old} could not be dropped ({exc.message})"
    return None


async def _finish(resources: Resources, job_id: str, state: JobState, *, error: str | None = None) -> None:
    async with resources.sessions() as session:
        await jobs.finish_job(session, job_id=job_id, state=state, error=error)
        await session.commit()
