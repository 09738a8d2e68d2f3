"""Corpus management and the caller's read scope (no HTTP here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.auth.service import granted_corpora
from core.db.models import CorpusRow, DocumentRow
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.indexing import corpus_collections
from core.resources import Resources


async def read_scope(resources: Resources, principal: Principal) -> frozenset[str] | None:
    """Corpora the caller may read: every one for admins (None), else their grants."""
    if principal.is_admin:
        return None
    async with resources.sessions() as session:
        return frozenset(await granted_corpora(session, user_id=principal.user_id))


async def create(session: AsyncSession, *, name: str) -> CorpusRow:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInputError("a corpus name must have 1 to 200 characters")
    if (await session.execute(select(CorpusRow.id).where(CorpusRow.name == name))).first() is not None:
        raise ConflictError(f"a corpus named {name!r} already exists")
    row = CorpusRow(id=str(uuid.uuid4()), name=name, version=0)
    session.add(row)
    await session.flush()
    return row


async def list_visible(
    session: AsyncSession, *, scope: frozenset[str] | None
) -> Sequence[tuple[CorpusRow, int]]:
    """Corpora in ``scope`` (None: all) with their document counts, by name."""
    documents = (
        select(DocumentRow.corpus_id, func.count().label("n")).group_by(DocumentRow.corpus_id).subquery()
    )
    query = (
        select(CorpusRow, func.coalesce(documents.c.n, 0))
        .outerjoin(documents, documents.c.corpus_id == CorpusRow.id)
        .order_by(CorpusRow.name)
    )
    if scope is not None:
        query = query.where(CorpusRow.name.in_(sorted(scope)))
    return [(row, int(n)) for row, n in (await session.execute(query)).all()]


async def delete(resources: Resources, *, corpus_id: str) -> None:
    """Delete a corpus: its collections first (every generation), then its rows (documents, grants)."""
    async with resources.sessions() as session:
        row = await session.get(CorpusRow, corpus_id)
        if row is None:
            raise NotFoundError(f"no corpus {corpus_id!r}")
        for collection in corpus_collections(await resources.store.collections(), row.name):
            await resources.store.drop_collection(collection)
        await session.delete(row)
        await session.commit()
