"""A corpus's serving index: its row, collection, chunker config and embedder, created on first use.

:func:`corpus_index` gets the index an ingest writes to, making the corpus and its first
generation when they do not exist yet. Only `lore reindex` makes later generations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import ids
from core.components.embedding import Embedder
from core.db.models import CorpusRow, DocumentRow
from core.errors import ConflictError, NotFoundError
from core.indexing import IndexConfig, collection_alias, collection_name
from core.resources import Resources
from ingestion.chunking import CHUNKER_VERSION
from ingestion.jobs import JobKind, running_job

# Tokens kept free in each chunk's budget for its context header (see stages.embedding_text).
HEADER_TOKENS = 40


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
    collection = collection_name(corpus.index_key, 1)
    embedder = await resources.embedder_for(config.model)
    await resources.store.ensure_collection(collection, dim=embedder.dim)
    await resources.store.set_alias(collection_alias(corpus.index_key), collection)
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
    running = await running_job(session, corpus_id=corpus.id, kind=JobKind.REINDEX)
    if running is not None:
        raise ConflictError(
            f"corpus {corpus.name!r} is being re-indexed (job {running.id}): "
            "ingest into it once that job ends"
        )


async def get_or_create_corpus(session: AsyncSession, name: str) -> CorpusRow:
    """The corpus named ``name``, made first when there is none (the name must then pass the rule)."""
    row = (await session.execute(select(CorpusRow).where(CorpusRow.name == name))).scalar_one_or_none()
    if row is None:
        row = CorpusRow(id=str(uuid.uuid4()), name=ids.check_corpus_name(name), version=0)
        session.add(row)
        await session.flush()
    return row
