"""Retiring documents gone from their source: marked missing first, deleted once the grace has passed.

A run that covers a folder (or a crawl that covers a site) whole finds which of the corpus's
documents it no longer saw; they get ``ingestion.gone_grace_s`` to come back before they are deleted,
so a folder unmounted for a moment does not empty the corpus.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import ids
from core.db.models import CorpusRow, DocumentRow, utcnow
from core.resources import Resources


async def prune_gone(resources: Resources, corpus: CorpusRow, prefixes: Sequence[str], seen: set[str]) -> int:
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
