"""Search: the chunks that best match a query, without an answer.

Scoped and limited as questions are: the caller's corpus grants bound the search, and it shares
the query rate limit.
"""

from __future__ import annotations

import time

from fastapi import APIRouter

from api.auth.dependencies import CredentialCacheDep, ReaderPrincipal
from api.corpora.service import read_scope
from api.dependencies import ResourcesDep
from api.ops.ratelimit import QueryRateLimit
from api.schemas import ErrorResponse, SearchRequest, SearchResponse, SearchResultPublic, SignalScoresPublic
from core.types import SearchHit
from retrieval import service

router = APIRouter(prefix="/v1", tags=["query"], dependencies=[QueryRateLimit])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "The corpus does not exist (for this caller)"},
    422: {"model": ErrorResponse, "description": "Invalid query or parameters"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded: retry after Retry-After seconds"},
    503: {"model": ErrorResponse, "description": "A backend (vector store, embedder) is unavailable"},
}


@router.post("/search", response_model=SearchResponse, responses=_ERRORS, summary="Find matching chunks")
async def search(
    body: SearchRequest, principal: ReaderPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> SearchResponse:
    scope = await read_scope(resources, principal, credentials)
    chosen = body.filters.to_domain() if body.filters else None
    timings: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    explained: dict[str, service.SignalScores] | None = {} if body.explain else None
    start = time.perf_counter()
    hits = await service.find(
        resources,
        body.query,
        corpus=body.corpus,
        k=body.k,
        allowed_corpora=scope,
        filter=chosen,
        timings=timings,
        verdicts=verdicts,
        explain=explained,
    )
    timings["total_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return SearchResponse(
        results=[_result(hit, explained) for hit in hits], timings=timings, verdicts=verdicts
    )


def _result(hit: SearchHit, explained: dict[str, service.SignalScores] | None) -> SearchResultPublic:
    result = SearchResultPublic.from_domain(hit)
    signals = explained.get(hit.chunk_id) if explained is not None else None
    if signals is not None:
        result.scores = SignalScoresPublic(
            hybrid=hit.score,
            dense=signals.dense,
            dense_rank=signals.dense_rank,
            sparse=signals.sparse,
            sparse_rank=signals.sparse_rank,
        )
    return result
