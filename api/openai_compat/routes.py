"""``POST /v1/chat/completions`` and ``GET /v1/models``: Lore's answers for the OpenAI clients.

Answers come from the one answer service (``retrieval.service.stream_answer``), in the caller's
corpus grants, under the query rate limit, through the answer cache and sentence verification, and
are counted and sampled for moderation by the same :class:`~api.exchange.Exchange` as ``/v1/query``'s
streams. A whole completion is the stream collected.

Streaming sends only final text: each verified sentence as it is complete, except that the
sentences before the first one a source supports are held back until one is (a refusal may still
replace them: ``TokenEvent.final``), so a plain client never shows a sentence that is later removed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from api.auth.dependencies import CredentialCacheDep, ReaderPrincipal
from api.background import BackgroundWork
from api.corpora.service import list_visible, read_scope
from api.dependencies import BackgroundDep, MetricsDep, ResourcesDep
from api.exchange import Exchange
from api.openai_compat.errors import OpenAIRoute, lore_error, model_not_found
from api.openai_compat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    LoreExtension,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
    Usage,
)
from api.openai_compat.translate import (
    MODEL,
    Conversation,
    Generation,
    conversation,
    corpus_of,
    generation,
    model_id,
    sources_block,
)
from api.ops.ratelimit import QueryRateLimit
from api.schemas import QueryResponse
from core.errors import LoreError, NotFoundError
from core.resources import Resources
from core.types import Answer
from retrieval import service
from retrieval.service import Ask, DoneEvent, RefusalEvent, StreamEvent, TokenEvent

log = logging.getLogger("lore.api")
router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[QueryRateLimit])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorResponse, "description": "Invalid parameters (OpenAI's invalid_request_error)"},
    401: {"model": OpenAIErrorResponse, "description": "No valid API key or token as the bearer credential"},
    403: {"model": OpenAIErrorResponse, "description": "The caller's role may not ask questions"},
    404: {"model": OpenAIErrorResponse, "description": "No such model for this caller (model_not_found)"},
    429: {
        "model": OpenAIErrorResponse,
        "description": "Rate limit exceeded: retry after Retry-After seconds",
    },
    503: {"model": OpenAIErrorResponse, "description": "A backend (vector store, LLM) is unavailable"},
}


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


async def _models(resources: Resources, scope: frozenset[str] | None) -> list[ModelCard]:
    async with resources.sessions() as session:
        rows = await list_visible(session, scope=scope)
    cards = [ModelCard(id=model_id(row.name), created=_seconds(row.created_at)) for row, _ in rows]
    return [ModelCard(id=MODEL, created=min((c.created for c in cards), default=0)), *cards]


@router.get("/models", response_model=ModelList, responses=_ERRORS, summary="Models you may use (OpenAI)")
async def list_models(
    principal: ReaderPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> ModelList:
    """``lore`` (every corpus you may read) and ``lore:<corpus>`` for each of them."""
    return ModelList(data=await _models(resources, await read_scope(resources, principal, credentials)))


@router.get("/models/{model:path}", response_model=ModelCard, responses=_ERRORS, summary="One model (OpenAI)")
async def get_model(
    model: str, principal: ReaderPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> ModelCard:
    cards = await _models(resources, await read_scope(resources, principal, credentials))
    if (card := next((c for c in cards if c.id == model), None)) is None:
        raise model_not_found(model)
    return card


@dataclass(frozen=True, slots=True)
class _Reply:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
            **extra,
        }
        return _event(payload)

    def delta(self, **delta: str) -> bytes:
        return self.chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])


def _event(payload: object) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The completion, or its chunks (stream)"},
        **_ERRORS,
    },
    summary="Answer the last message, with citations (OpenAI chat completions)",
    description=(
        "The OpenAI chat completions API over Lore's answers: the model names the corpora "
        "(`lore`, `lore:<corpus>`), the last message is the question and earlier user and "
        "assistant messages its history (system messages are ignored). The content ends with the "
        "numbered sources it cites; `lore` (on the message, or on the stream's chunk with the "
        "finish_reason) has the citations as /v1/query gives them, `refused` and "
        "`unsupported_sentences`. Streams send verified sentences only (docs/api.md)."
    ),
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    metrics: MetricsDep,
    background: BackgroundDep,
    response: Response,
    credentials: CredentialCacheDep,
) -> Response | ChatCompletion:
    # Every input error raises here, before a byte of a stream is sent.
    corpus = corpus_of(body.model)
    talk = conversation(body.messages)
    wanted = generation(body, resources.settings.llm)
    ask = Ask(
        talk.question,
        corpus=corpus,
        allowed_corpora=await read_scope(resources, principal, credentials),
        history=talk.history,
        max_tokens=wanted.max_tokens,
        temperature=wanted.temperature,
        stop=wanted.stop,
    )
    try:
        events = await service.stream_answer(resources, ask)
    except NotFoundError as exc:
        # A named corpus that does not exist, or that the caller may not read, alike.
        raise model_not_found(body.model) from exc
    exchange = Exchange(talk.question, None, metrics, ask=ask, resources=resources)
    reply = _Reply(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body.model)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        # Headers that dependencies set (rate-limit state) would be lost on a returned Response: copy them.
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("ratelimit-")}
        return StreamingResponse(
            _stream(events, exchange, reply, resources, background, talk, wanted, include_usage),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    try:
        async for event in events:
            exchange.record(event)
    finally:
        exchange.save_later(resources, background)
    assert exchange.done is not None, "a finished answer stream ends with its done event"
    answer = exchange.done.answer
    extension = _extension(answer)
    content = answer.answer + sources_block(extension.citations)
    return ChatCompletion(
        id=reply.id,
        created=reply.created,
        model=reply.model,
        choices=[
            Choice(
                message=AssistantMessage(content=content, lore=extension),
                finish_reason=_finish_reason(answer, wanted),
            )
        ],
        usage=_usage(resources, talk, content),
    )


def _extension(answer: Answer) -> LoreExtension:
    public = QueryResponse.from_domain(answer)
    return LoreExtension(
        citations=public.citations, refused=public.refused, unsupported_sentences=public.unsupported_sentences
    )


def _finish_reason(answer: Answer, wanted: Generation) -> str:
    """length when the draft used every token it was allowed, else stop."""
    drafted = answer.usage.get("completion_tokens", 0)
    return "length" if not answer.cached and not answer.refused and drafted >= wanted.max_tokens else "stop"


def _usage(resources: Resources, talk: Conversation, content: str) -> Usage:
    """The question and history turns, and the content returned, counted by the LLM's tokenizer
    (llama.cpp's own; about four characters a token for an HTTP endpoint). The sources Lore adds
    to the prompt are not the client's tokens and are not counted."""
    count = resources.llm.count_tokens
    prompt = count(talk.question) + sum(count(turn["content"]) for turn in talk.history)
    completion = count(content)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def _stream(
    events: AsyncIterator[StreamEvent],
    exchange: Exchange,
    reply: _Reply,
    resources: Resources,
    background: BackgroundWork,
    talk: Conversation,
    wanted: Generation,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The chunks: the role, the answer's final text, its sources, the finish with the extension
    (then the usage when asked), then [DONE]; a failure ends the stream with an error event."""
    held: list[str] = []
    sent: list[str] = []

    def send(text: str) -> bytes:
        sent.append(text)
        return reply.delta(content=text)

    try:
        yield reply.delta(role="assistant", content="")
        settled = False
        async for event in events:
            exchange.record(event)
            if isinstance(event, TokenEvent):
                held.append(event.text)
                settled = settled or event.final
                if settled:
                    yield send("".join(held))
                    held.clear()
            elif isinstance(event, RefusalEvent):
                # It replaces what was held back; nothing final is ever sent before a refusal.
                held[:] = [event.text]
            elif isinstance(event, DoneEvent):
                answer = event.answer
                extension = _extension(answer)
                if tail := "".join(held) + sources_block(extension.citations):
                    yield send(tail)
                finish = {
                    "index": 0,
                    "delta": {},
                    "finish_reason": _finish_reason(answer, wanted),
                    "logprobs": None,
                }
                yield reply.chunk([finish], lore=extension.model_dump(mode="json"))
                if include_usage:
                    usage = _usage(resources, talk, "".join(sent))
                    yield reply.chunk([], usage=usage.model_dump())
        yield b"data: [DONE]\n\n"
    except LoreError as exc:
        exchange.failed()
        log.error("chat completion stream failed: %s", exc.message)
        _, body = lore_error(exc)
        yield _event(body)
    finally:
        # Runs on success, on error and when the client leaves (the generator is cancelled).
        exchange.save_later(resources, background)
