"""The documents a corpus holds: listed, described, deleted, and their extracted text.

The CLI (`lore documents`), the admin API and the MCP server read documents through these functions.
A document's text is what ingestion extracted and chunked (its stored blocks, see
``DocumentBlocksRow``), so a citation's passage is found in it as it was indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import CorpusRow, DocumentBlocksRow, DocumentFileRow, DocumentRow
from core.errors import NotFoundError
from core.resources import Resources
from ingestion.chunking import page_text
from ingestion.formats.document import unpack_blocks


@dataclass(frozen=True, slots=True)
class DocumentText:
    id: str
    corpus: str
    title: str
    source: str
    pages: int | None
    page: int | None  # the page asked for; None: the whole document
    text: str


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """The bytes a document was indexed from, as ingestion read them."""

    name: str
    content_type: str
    data: bytes


async def find_document(session: AsyncSession, document_id: str) -> tuple[DocumentRow, str]:
    """The document's row and its corpus's name; :class:`NotFoundError` when there is none."""
    found = (
        await session.execute(
            select(DocumentRow, CorpusRow.name)
            .join(CorpusRow, CorpusRow.id == DocumentRow.corpus_id)
            .where(DocumentRow.id == document_id)
        )
    ).first()
    if found is None:
        raise NotFoundError(f"no document {document_id!r}")
    return found[0], found[1]


async def document_text(
    resources: Resources, document_id: str, *, page: int | None = None, allowed_corpora: frozenset[str] | None
) -> DocumentText:
    """The extracted text of ``document_id`` (one ``page`` of it when given, counted from 1).

    A document outside ``allowed_corpora`` (None: unrestricted) is reported missing, exactly as one
    that does not exist, so that a reader learns nothing about corpora they may not read. So is a
    page the document does not have.
    """
    async with resources.sessions() as session:
        row, corpus = await _readable(session, document_id, allowed_corpora)
        stored = await session.get(DocumentBlocksRow, row.id)
    blocks = unpack_blocks(stored.data) if stored is not None else []
    if page is not None and not any(b.page == page for b in blocks):
        raise NotFoundError(f"document {document_id!r} has no text on page {page}")
    return DocumentText(
        id=row.id,
        corpus=corpus,
        title=row.title,
        source=row.source,
        pages=row.pages,
        page=page,
        # The text that chunks' spans index (ingestion.chunking).
        text=page_text(blocks, page),
    )


async def document_file(
    resources: Resources, document_id: str, *, allowed_corpora: frozenset[str] | None
) -> DocumentFile:
    """The original bytes of ``document_id``; missing (as :func:`document_text` says) outside
    ``allowed_corpora``, and for documents indexed before Lore kept originals."""
    async with resources.sessions() as session:
        row, _ = await _readable(session, document_id, allowed_corpora)
        stored = await session.get(DocumentFileRow, row.id)
    if stored is None:
        raise NotFoundError(
            f"document {document_id!r} has no stored original (it was indexed before Lore kept "
            "them: ingest it again)"
        )
    return DocumentFile(name=stored.name, content_type=stored.content_type, data=stored.data)


async def _readable(
    session: AsyncSession, document_id: str, allowed_corpora: frozenset[str] | None
) -> tuple[DocumentRow, str]:
    row, corpus = await find_document(session, document_id)
    if allowed_corpora is not None and corpus not in allowed_corpora:
        raise NotFoundError(f"no document {document_id!r}")
    return row, corpus


def describe_document(row: DocumentRow, corpus: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "corpus": corpus,
        "source": row.source,
        "title": row.title,
        "chunks": row.chunk_count,
        "pages": row.pages,
        "ocr_pages": row.ocr_pages,
        "updated_at": row.updated_at.isoformat(),
        "missing_since": row.missing_since.isoformat() if row.missing_since else None,
    }


async def list_documents(
    sessions: async_sessionmaker[AsyncSession],
    *,
    corpus: str | None = None,
    corpus_id: str | None = None,
    contains: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """A corpus's documents (named, or by ID) by source; ``contains``: only those whose title or
    source holds it (any case); ``limit`` and ``offset`` page them."""
    _, page = await page_documents(
        sessions, corpus=corpus, corpus_id=corpus_id, contains=contains, limit=limit, offset=offset
    )
    return page


async def page_documents(
    sessions: async_sessionmaker[AsyncSession],
    *,
    corpus: str | None = None,
    corpus_id: str | None = None,
    contains: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """:func:`list_documents`, with how many match in all: (total, page)."""
    async with sessions() as session:
        found = select(CorpusRow)
        found = found.where(CorpusRow.id == corpus_id) if corpus_id else found.where(CorpusRow.name == corpus)
        corpus_row = (await session.execute(found)).scalar_one_or_none()
        if corpus_row is None:
            raise NotFoundError(f"no corpus {corpus_id or corpus!r}")
        where = [DocumentRow.corpus_id == corpus_row.id]
        if contains:
            pattern = "%" + contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                or_(
                    DocumentRow.title.ilike(pattern, escape="\\"),
                    DocumentRow.source.ilike(pattern, escape="\\"),
                )
            )
        total = int(await session.scalar(select(func.count()).select_from(DocumentRow).where(*where)) or 0)
        query = select(DocumentRow).where(*where).order_by(DocumentRow.source).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        rows = (await session.execute(query)).scalars()
        return total, [describe_document(r, corpus_row.name) for r in rows]


async def get_document(sessions: async_sessionmaker[AsyncSession], document_id: str) -> dict[str, Any]:
    async with sessions() as session:
        row, corpus = await find_document(session, document_id)
    return describe_document(row, corpus)


async def delete_document(resources: Resources, document_id: str) -> None:
    """Delete a document: its chunks first, then its row and blocks; its corpus's version moves on."""
    async with resources.sessions() as session:
        row = await session.get(DocumentRow, document_id)
        if row is None:
            raise NotFoundError(f"no document {document_id!r}")
        corpus = await session.get(CorpusRow, row.corpus_id)
        if corpus is not None:
            if corpus.collection is not None:
                await resources.store.delete_document(corpus.collection, row.id)
            corpus.version += 1
        # Its stored blocks go with the row (foreign key cascade).
        await session.delete(row)
        await session.commit()
