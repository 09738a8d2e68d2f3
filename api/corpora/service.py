"""Corpus management and the caller's read scope (no HTTP here)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.cache import CredentialCache
from api.auth.principal import Principal
from api.auth.service import granted_corpora
from api.corpora.uploads import upload_dir
from core import ids
from core.db.models import BatchLineRow, ConversationRow, CorpusRow, DocumentRow, EvalRunRow
from core.errors import ConflictError, NotFoundError
from core.indexing import corpus_collections
from core.resources import Resources
from core.settings import CrawlSettings
from ingestion.crawl.addresses import AddressGuard, AllowList
from ingestion.crawl.urls import Scope, host_of, normalise_url


async def read_scope(
    resources: Resources, principal: Principal, cache: CredentialCache | None = None
) -> frozenset[str] | None:
    """Corpora the caller may read: every one for admins (None), else their grants.

    With ``cache``, grants read within the last ``auth.credential_cache_s`` seconds are reused.
    """
    if principal.is_admin:
        return None
    if cache is not None:
        found, scope = cache.scope(principal.user_id)
        if found:
            return scope
    async with resources.sessions() as session:
        scope = frozenset(await granted_corpora(session, user_id=principal.user_id))
    if cache is not None:
        cache.remember_scope(principal.user_id, scope)
    return scope


async def create(session: AsyncSession, *, name: str) -> CorpusRow:
    ids.check_corpus_name(name)
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
        for collection in corpus_collections(await resources.store.collections(), row.index_key):
            await resources.store.drop_collection(collection)
        await session.delete(row)
        await session.commit()
    await asyncio.to_thread(
        shutil.rmtree, upload_dir(resources.settings.data_dir, corpus_id), ignore_errors=True
    )


async def rename(session: AsyncSession, *, corpus_id: str, name: str) -> CorpusRow:
    """Give a corpus a new name: queries, grants, conversations and eval runs follow it.

    Its collections keep the name they were made under (``collection_key``), so nothing is
    re-indexed; its version moves on, so answers cached under the old name are not served.
    """
    ids.check_corpus_name(name)
    row = await session.get(CorpusRow, corpus_id)
    if row is None:
        raise NotFoundError(f"no corpus {corpus_id!r}")
    if row.name == name:
        return row
    taken = await session.scalar(select(CorpusRow.id).where(CorpusRow.name == name))
    if taken is not None:
        raise ConflictError(f"a corpus named {name!r} already exists")
    old = row.name
    row.collection_key = row.index_key
    row.name = name
    row.version += 1
    for table in (ConversationRow, EvalRunRow, BatchLineRow):
        await session.execute(update(table).where(table.corpus == old).values(corpus=name))
    await session.flush()
    return row


async def get(resources: Resources, *, corpus_id: str) -> CorpusRow:
    """The corpus with this ID, or :class:`NotFoundError`."""
    async with resources.sessions() as session:
        row = await session.get(CorpusRow, corpus_id)
    if row is None:
        raise NotFoundError(f"no corpus {corpus_id!r}")
    return row


async def check_crawl(urls: Sequence[str], settings: CrawlSettings) -> list[str]:
    """The normalised start URLs, once each passes what the crawl checks first (scheme, patterns, address).

    A crawl started in the background would find the same mistakes only after the caller was answered.
    """
    starts = list(dict.fromkeys(normalise_url(url) for url in urls))
    Scope.build(
        starts,
        same_site=settings.same_site,
        include=settings.include_patterns,
        exclude=settings.exclude_patterns,
    )
    guard = AddressGuard(AllowList.parse(settings.allow_hosts))
    for url in starts:
        await guard.resolve(host_of(url), 0)
    return starts
