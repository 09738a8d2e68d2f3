"""Questions: a whole answer, or the answer streamed as Server-Sent Events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, format_sse_event

from api.dependencies import ResourcesDep
from api.errors import status_for
from api.schemas import CitationPublic, ErrorResponse, QueryRequest, QueryResponse
from core.errors import LoreError
from retrieval import service
from retrieval.service import CitationsEvent, DoneEvent, StreamEvent, TokenEvent

log = logging.getLogger("lore.api")
router = APIRouter(prefix="/v1", tags=["query"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "The corpus does not exist"},
    422: {"model": ErrorResponse, "description": "Invalid question or parameters"},
    503: {"model": ErrorResponse, "description": "A backend (vector store, LLM) is unavailable"},
}


@router.post("/query", response_model=QueryResponse, responses=_ERRORS, summary="Ask a question")
async def query(body: QueryRequest, resources: ResourcesDep) -> QueryResponse:
    answer = await service.answer(resources, body.question, corpus=body.corpus, k=body.k)
    return QueryResponse.from_domain(answer)


@router.post(
    "/query/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}, **_ERRORS},
    summary="Ask a question; the answer streams as Server-Sent Events",
    description=(
        "Events: `token` (data: the text piece, JSON string) as the model writes, then `citations` "
        "(data: JSON list of citations), then `done` (data: model, timings, and `cached`: whether the "
        "answer came from the exact-repeat cache). "
        "A failure after the stream started ends it with an `error` event."
    ),
)
async def query_stream(body: QueryRequest, resources: ResourcesDep) -> EventSourceResponse:
    # Input errors (unknown corpus, bad k) raise here, before any byte is sent, as normal errors.
    events = await service.stream_answer(resources, body.question, corpus=body.corpus, k=body.k)
    return EventSourceResponse(
        _encode(events), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _sse(event: str, data: object) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))


async def _encode(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            if isinstance(event, TokenEvent):
                yield _sse("token", event.text)
            elif isinstance(event, CitationsEvent):
                yield _sse("citations", [CitationPublic.from_domain(c).model_dump() for c in event.citations])
            elif isinstance(event, DoneEvent):
                yield _sse("done", {"model": event.model, "timings": event.timings, "cached": event.cached})
    except LoreError as exc:
        log.error("stream failed: %s", exc.message)
        yield _sse("error", {"code": exc.code, "message": exc.message, "status": status_for(exc)})
