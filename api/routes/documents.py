"""Documents: described and deleted by admins; read, as text and as the original file, by anyone
granted their corpus (a document outside a reader's grants is "not found", as a missing one is)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from api.auth.dependencies import AdminPrincipal, CredentialCacheDep, ReaderPrincipal
from api.corpora.service import read_scope
from api.corpora.uploads import uploads_root
from api.dependencies import ResourcesDep
from api.ops.ratelimit import AdminRateLimit, QueryRateLimit
from api.schemas import DocumentTextPublic, ErrorResponse
from ingestion import documents

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such document (for this caller), or no such page"}
}


class DocumentPublic(BaseModel):
    id: str
    corpus: str
    source: str
    title: str
    chunks: int
    pages: int | None
    ocr_pages: int = Field(default=0, description="Pages whose text OCR read (scanned pages, images).")
    updated_at: datetime
    missing_since: datetime | None = Field(description="When a run first found it gone from its source.")


class DocumentPage(BaseModel):
    total: int = Field(description="Documents that match, in all pages.")
    documents: list[DocumentPublic]


@router.get(
    "",
    response_model=DocumentPage,
    responses={404: {"model": ErrorResponse, "description": "No such corpus"}},
    dependencies=[AdminRateLimit],
    summary="A corpus's documents, by source, a page at a time",
)
async def list_documents(
    _: AdminPrincipal,
    resources: ResourcesDep,
    corpus_id: Annotated[str, Query(description="The corpus (its ID, as GET /v1/corpora gives).")],
    q: Annotated[
        str | None, Query(max_length=500, description="Only titles or sources holding this.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentPage:
    total, page = await documents.page_documents(
        resources.sessions, corpus_id=corpus_id, contains=q, limit=limit, offset=offset
    )
    return DocumentPage(total=total, documents=[DocumentPublic(**d) for d in page])


@router.get(
    "/{document_id}", response_model=DocumentPublic, responses=_NOT_FOUND, dependencies=[AdminRateLimit]
)
async def get_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> DocumentPublic:
    return DocumentPublic(**await documents.get_document(resources.sessions, document_id))


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
    dependencies=[AdminRateLimit],
)
async def delete_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> None:
    """Delete the document's chunks, row and original, and its file when it was uploaded through the API."""
    document = await documents.get_document(resources.sessions, document_id)
    await documents.delete_document(resources, document_id)
    uploads = uploads_root(resources.settings.data_dir).resolve()
    path = Path(document["source"])
    if path.is_relative_to(uploads):
        await asyncio.to_thread(path.unlink, missing_ok=True)


@router.get(
    "/{document_id}/text",
    response_model=DocumentTextPublic,
    responses=_NOT_FOUND,
    dependencies=[QueryRateLimit],
    summary="A document's extracted text, whole or one page",
)
async def document_text(
    document_id: str,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    credentials: CredentialCacheDep,
    page: Annotated[
        int | None, Query(ge=1, description="One page (counted from 1); all when left out.")
    ] = None,
) -> DocumentTextPublic:
    """The text a citation's ``location.spans`` index: for a cited chunk with page N, ``?page=N``;
    for one without a page, the whole text."""
    scope = await read_scope(resources, principal, credentials)
    found = await documents.document_text(resources, document_id, page=page, allowed_corpora=scope)
    return DocumentTextPublic.from_domain(found)


@router.get(
    "/{document_id}/file",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The original bytes"},
        **_NOT_FOUND,
    },
    dependencies=[QueryRateLimit],
    summary="The original file a document was indexed from",
)
async def document_file(
    document_id: str, principal: ReaderPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> Response:
    """The bytes ingestion read (an upload, a file, a web page as fetched), with their media type.

    Served inline but sandboxed: a stored HTML page runs no script in Lore's origin.
    """
    scope = await read_scope(resources, principal, credentials)
    found = await documents.document_file(resources, document_id, allowed_corpora=scope)
    headers = {
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    if found.content_type.startswith("text/html"):
        # A page as fetched may hold scripts: shown in a sandbox (an opaque origin), none runs.
        headers["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        )
    return Response(content=found.data, media_type=found.content_type, headers=headers)
