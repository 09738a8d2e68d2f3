"""A stored document's extracted text, whole or one page, for readers with a grant on its corpus.

The text is what ingestion extracted and chunked (its stored blocks, see ``DocumentBlocksRow``), so a
citation's passage is found in it as it was indexed. Used by the MCP server's ``get_document`` tool
and ``lore://documents/...`` resources.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import CorpusRow, DocumentBlocksRow, DocumentRow
from core.errors import NotFoundError
from core.resources import Resources
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
        row, corpus = await find_document(session, document_id)
        if allowed_corpora is not None and corpus not in allowed_corpora:
            raise NotFoundError(f"no document {document_id!r}")
        stored = await session.get(DocumentBlocksRow, row.id)
    blocks = unpack_blocks(stored.data) if stored is not None else []
    if page is not None:
        blocks = [b for b in blocks if b.page == page]
        if not blocks:
            raise NotFoundError(f"document {document_id!r} has no text on page {page}")
    return DocumentText(
        id=row.id,
        corpus=corpus,
        title=row.title,
        source=row.source,
        pages=row.pages,
        page=page,
        text="\n\n".join(b.text for b in blocks),
    )
