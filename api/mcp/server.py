"""Lore as a Model Context Protocol server (the official ``mcp`` SDK's ``MCPServer``).

Tools: ``search`` (chunks, as ``POST /v1/search``), ``ask`` (a cited, verified answer, as
``POST /v1/query``), ``list_corpora`` and ``get_document`` (a document's extracted text, whole or
one page). Resources: every document as ``lore://documents/{id}``, a page of it as
``lore://documents/{id}/pages/{page}``. Each goes through the same services, grants,
verification and cache as the REST routes; results carry their citations as structured content.

Who calls is decided per call by a :class:`Callers`: over Streamable HTTP (``/mcp`` on
``lore serve``) the bearer API key or access token of the request, which ``require_bearer``
checked before the SDK saw it; over stdio (``lore mcp``) the one user named by ``--user`` or
``LORE_MCP__USER``, with that user's role and grants.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field, ValidationError

from api.auth.principal import Principal
from api.corpora.service import list_visible
from api.inputs import refusal, unstorable
from api.schemas import (
    DocumentTextPublic,
    QueryRequest,
    QueryResponse,
    SearchFilters,
    SearchRequest,
    SearchResponse,
    SearchResultPublic,
)
from core.errors import LoreError, NotFoundError
from core.resources import Resources
from ingestion.documents import DocumentText, document_text
from retrieval import service

P = ParamSpec("P")
R = TypeVar("R")

INSTRUCTIONS = (
    "Lore answers questions from an organisation's documents, with citations. Use `ask` for an "
    "answer that cites its sources (a refusal means the documents do not say), `search` for the "
    "passages themselves, `list_corpora` to see what you may search, and `get_document` (or the "
    "lore://documents/{id} resources) to read a cited document."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a tool call acts for: the principal, the corpora they may read (None: every one), and
    a hook that spends one token of their query rate limit (or raises ``RateLimitedError``)."""

    principal: Principal
    scope: frozenset[str] | None
    spend_query: Callable[[], Awaitable[None]]


class Callers:
    """Where the server gets its resources and, per call, its caller (see the module docstring)."""

    async def resources(self, ctx: Context) -> Resources:
        raise NotImplementedError

    async def caller(self, ctx: Context) -> Caller:
        raise NotImplementedError


class CorpusPublicMCP(BaseModel):
    name: str
    documents: int = Field(description="Documents recorded in the corpus.")


class CorpusList(BaseModel):
    corpora: list[CorpusPublicMCP] = Field(description="The corpora this caller may search, by name.")


class DocumentPublicText(DocumentTextPublic):
    uri: str = Field(description="The document's lore:// resource URI.")

    @classmethod
    def of(cls, doc: DocumentText) -> DocumentPublicText:
        return cls.from_domain(doc, uri=document_uri(doc.id, doc.page))


def document_uri(document_id: str, page: int | None = None) -> str:
    """A document's resource URI (``lore://documents/{id}``, with ``/pages/{n}`` for one page)."""
    return f"lore://documents/{document_id}" + (f"/pages/{page}" if page is not None else "")


def _as_tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Lore's own errors (not found, invalid input, rate limited, a backend down) reach the client
    as the tool's error text; the SDK would otherwise hide an unexpected exception's message."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except LoreError as exc:
            raise ToolError(str(exc)) from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments: {problems}") from exc

    return call


def _storable(**values: Any) -> None:
    for name, value in values.items():
        if (where := unstorable(value, name)) is not None:
            raise refusal(where)


def build_server(callers: Callers) -> MCPServer:
    """The MCP server: Lore's tools and document resources, each call acting for ``callers``' caller."""
    server: MCPServer = MCPServer("lore", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(
        description=(
            "Find the passages that best match a query in the documents you may read, best first, "
            "each with its document ID, title, source, page and score (no answer is written)."
        )
    )
    @_as_tool_errors
    async def search(
        query: str,
        ctx: Context,
        corpus: str | None = None,
        k: int = 5,
        filters: SearchFilters | None = None,
    ) -> SearchResponse:
        _storable(query=query, corpus=corpus)
        request = SearchRequest(query=query, corpus=corpus, k=k, filters=filters)
        resources, caller = await _querying(callers, ctx)
        timings: dict[str, float] = {}
        verdicts: dict[str, str] = {}
        hits = await service.find(
            resources,
            request.query,
            corpus=request.corpus,
            k=request.k,
            allowed_corpora=caller.scope,
            filter=request.filters.to_domain() if request.filters else None,
            timings=timings,
            verdicts=verdicts,
        )
        return SearchResponse(
            results=[SearchResultPublic.from_domain(hit) for hit in hits], timings=timings, verdicts=verdicts
        )

    @server.tool(
        description=(
            "Answer a question from the documents you may read. Every sentence of the answer is "
            "checked against the passage it cites; `citations` holds those passages. When the "
            "documents do not hold the answer, `refused` is true and the answer says so: do not "
            "answer from elsewhere as if Lore had."
        )
    )
    @_as_tool_errors
    async def ask(
        question: str,
        ctx: Context,
        corpus: str | None = None,
        k: int | None = None,
        filters: SearchFilters | None = None,
    ) -> QueryResponse:
        _storable(question=question, corpus=corpus)
        request = QueryRequest(question=question, corpus=corpus, k=k, filters=filters)
        resources, caller = await _querying(callers, ctx)
        answer = await service.answer(
            resources,
            service.Ask(
                request.question,
                corpus=request.corpus,
                k=request.k,
                allowed_corpora=caller.scope,
                filter=request.filters.to_domain() if request.filters else None,
            ),
        )
        return QueryResponse.from_domain(answer)

    @server.tool(description="The corpora you may search or ask about, with their document counts.")
    @_as_tool_errors
    async def list_corpora(ctx: Context) -> CorpusList:
        resources = await callers.resources(ctx)
        caller = await callers.caller(ctx)
        async with resources.sessions() as session:
            rows = await list_visible(session, scope=caller.scope)
        return CorpusList(corpora=[CorpusPublicMCP(name=row.name, documents=n) for row, n in rows])

    @server.tool(
        description=(
            "The text Lore extracted from a document (by the document_id a search result or a "
            "citation gives), whole or one page (counted from 1)."
        )
    )
    @_as_tool_errors
    async def get_document(document_id: str, ctx: Context, page: int | None = None) -> DocumentPublicText:
        _storable(document_id=document_id)
        return await _read(callers, ctx, document_id, page)

    @server.resource(
        "lore://documents/{document_id}",
        name="document",
        description="A document's extracted text, by its ID (as search results and citations give it).",
        mime_type="text/plain",
    )
    async def document_resource(document_id: str, ctx: Context) -> str:
        return (await _read_resource(callers, ctx, document_id, None)).text

    @server.resource(
        "lore://documents/{document_id}/pages/{page}",
        name="document-page",
        description="One page of a document's extracted text (PDF pages, counted from 1).",
        mime_type="text/plain",
    )
    async def document_page_resource(document_id: str, page: int, ctx: Context) -> str:
        return (await _read_resource(callers, ctx, document_id, page)).text

    return server


async def _querying(callers: Callers, ctx: Context) -> tuple[Resources, Caller]:
    """The resources and the caller of a search or a question, once it has spent its query token."""
    resources = await callers.resources(ctx)
    caller = await callers.caller(ctx)
    await caller.spend_query()
    return resources, caller


async def _read(callers: Callers, ctx: Context, document_id: str, page: int | None) -> DocumentPublicText:
    resources = await callers.resources(ctx)
    caller = await callers.caller(ctx)
    found = await document_text(resources, document_id, page=page, allowed_corpora=caller.scope)
    return DocumentPublicText.of(found)


async def _read_resource(
    callers: Callers, ctx: Context, document_id: str, page: int | None
) -> DocumentPublicText:
    """:func:`_read` for a resource: a missing (or ungranted) document is the SDK's not-found."""
    try:
        _storable(document_id=document_id)
        return await _read(callers, ctx, document_id, page)
    except NotFoundError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except LoreError as exc:
        raise ResourceError(str(exc)) from exc
