"""Questions: a whole answer, or the answer streamed as Server-Sent Events.

The caller's corpus grants always bound the search; a question may continue a conversation the
caller owns, whose earlier turns go to the pipeline and which records the new exchange.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Response
from fastapi.sse import EventSourceResponse, format_sse_event

from api import moderation
from api.auth.cache import CredentialCache
from api.auth.dependencies import CredentialCacheDep, ReaderPrincipal
from api.auth.principal import Principal
from api.background import BackgroundWork
from api.conversations import service as conversations
from api.corpora.service import read_scope
from api.dependencies import BackgroundDep, MetricsDep, ResourcesDep
from api.errors import client_message, status_for
from api.exchange import Exchange, answer_verdict, record_answer_metrics, save_exchange
from api.ops.metrics import Metrics
from api.ops.ratelimit import QueryRateLimit
from api.schemas import ErrorResponse, QueryRequest, QueryResponse
from core.components.llm import Message
from core.errors import LoreError
from core.resources import Resources
from retrieval import service
from retrieval.service import Ask, StreamEvent

log = logging.getLogger("lore.api")
router = APIRouter(prefix="/v1", tags=["query"], dependencies=[QueryRateLimit])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {
        "model": ErrorResponse,
        "description": "The corpus or conversation does not exist (for this caller)",
    },
    422: {"model": ErrorResponse, "description": "Invalid question or parameters"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded: retry after Retry-After seconds"},
    503: {"model": ErrorResponse, "description": "A backend (vector store, LLM) is unavailable"},
}


async def build_ask(
    resources: Resources, principal: Principal, body: QueryRequest, cache: CredentialCache | None = None
) -> Ask:
    """The question in the caller's scope, with the history of the conversation it continues."""
    scope = await read_scope(resources, principal, cache)
    history: tuple[Message, ...] = ()
    corpus = body.corpus
    if body.conversation_id is not None:
        async with resources.sessions() as session:
            row = await conversations.get_owned(
                session, user_id=principal.user_id, conversation_id=body.conversation_id
            )
            history = await conversations.history(session, conversation_id=row.id)
            corpus = corpus if corpus is not None else row.corpus
    chosen = body.filters.to_domain() if body.filters else None
    return Ask(body.question, corpus=corpus, k=body.k, allowed_corpora=scope, history=history, filter=chosen)


@router.post("/query", response_model=QueryResponse, responses=_ERRORS, summary="Ask a question")
async def query(
    body: QueryRequest,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    metrics: MetricsDep,
    background: BackgroundDep,
    credentials: CredentialCacheDep,
) -> QueryResponse:
    ask = await build_ask(resources, principal, body, credentials)
    answer = await service.answer(resources, ask)
    record_answer_metrics(metrics, cached=answer.cached, usage=answer.usage, cache_kind=answer.cache_kind)
    if moderation.pick(resources, cached=answer.cached, refused=answer.refused, guardrails=answer.guardrails):
        moderation.schedule(resources, background, metrics, ask=ask, answer=answer.answer)
    response = QueryResponse.from_domain(answer)
    if body.conversation_id is not None:
        await save_exchange(
            resources,
            conversation_id=body.conversation_id,
            question=body.question,
            answer=response.answer,
            citations=response.citations,
            model=response.model,
            timings=response.timings,
            status="complete",
            verdict=answer_verdict(answer),
        )
    return response


@router.post(
    "/query/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}, **_ERRORS},
    summary="Ask a question; the answer streams as Server-Sent Events",
    description=(
        "Events: `token` (data: a JSON string) carries verified text: the model's draft is held "
        "back up to each sentence's end and checked against the sources first, so nothing "
        "unverified is sent. `sentence_removed` (data: `sentence`, `reason`) says a sentence no "
        "source supports was left out (answer.unsupported=drop). `refusal` (data: `answer`) comes "
        "only when no sentence was supported: its text replaces what was streamed. Then "
        "`citations` (data: JSON list of the citations of the delivered sentences), then `done` "
        "(data: `answer`: the verified answer, model, timings, usage, `cached`, `cache_kind`: exact "
        "or semantic, `cache_similarity`, `refused`, `guardrails`, `unsupported_sentences`). A "
        "failure after the stream started ends it with an `error` event (data: code, message, "
        "status). With a `conversation_id` the exchange is saved after the stream ends, without "
        "delaying it; a client that disconnects cancels the generation and the partial answer is "
        "saved as such."
    ),
)
async def query_stream(
    body: QueryRequest,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    background: BackgroundDep,
    metrics: MetricsDep,
    response: Response,
    credentials: CredentialCacheDep,
) -> EventSourceResponse:
    # Input errors (unknown corpus or conversation, bad k) raise here, before any byte is sent.
    ask = await build_ask(resources, principal, body, credentials)
    events = await service.stream_answer(resources, ask)
    # Headers that dependencies set (rate-limit state) would be lost on a returned Response: copy them.
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("ratelimit-")}
    return EventSourceResponse(
        _encode(events, resources, background, metrics, body, ask),
        headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: object) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))


async def _encode(
    events: AsyncIterator[StreamEvent],
    resources: Resources,
    background: BackgroundWork,
    metrics: Metrics,
    body: QueryRequest,
    ask: Ask | None = None,
) -> AsyncIterator[bytes]:
    exchange = Exchange(body.question, body.conversation_id, metrics, ask=ask, resources=resources)
    try:
        async for event in events:
            yield _sse(*exchange.record(event))
    except LoreError as exc:
        exchange.failed()
        log.error("stream failed: %s", exc.message)
        yield _sse("error", {"code": exc.code, "message": client_message(exc), "status": status_for(exc)})
    finally:
        # Runs on success, on error and when the client leaves (the generator is cancelled).
        exchange.save_later(resources, background)
