"""One question and its streamed answer, as it goes out over SSE or a WebSocket.

Both transports feed every event through :class:`Exchange`, which gives the wire payload, counts
the answer in the metrics and, at the end, saves the exchange in its conversation (complete,
partial when the client left, or error) without delaying the stream.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from api import moderation
from api.background import BackgroundWork
from api.conversations import service as conversations
from api.ops.metrics import Metrics
from api.schemas import CitationPublic
from core.resources import Resources
from core.types import Answer
from retrieval.service import (
    Ask,
    CitationsEvent,
    DoneEvent,
    RefusalEvent,
    SentenceRemovedEvent,
    StreamEvent,
    TokenEvent,
)


def record_answer_metrics(
    metrics: Metrics, *, cached: bool, usage: dict[str, int], cache_kind: str | None = None
) -> None:
    metrics.count_cache(hit=cached, kind=cache_kind)
    if not cached:
        metrics.count_llm_tokens(
            tokens_in=usage.get("prompt_tokens", 0), tokens_out=usage.get("completion_tokens", 0)
        )


async def save_exchange(
    resources: Resources,
    *,
    conversation_id: str,
    question: str,
    answer: str,
    citations: list[CitationPublic],
    model: str | None,
    timings: dict[str, float],
    status: str,
    answer_id: str | None = None,
    verdict: dict[str, Any] | None = None,
) -> None:
    async with resources.sessions() as session:
        await conversations.record_exchange(
            session,
            conversation_id=conversation_id,
            question=question,
            answer=answer,
            citations=[c.model_dump() for c in citations],
            model=model,
            timings=timings,
            status=status,
            answer_id=answer_id,
            verdict=verdict,
        )
        await session.commit()


def answer_verdict(answer: Answer) -> dict[str, Any]:
    """What a conversation keeps of an answer's verification: refusal, kind, removed sentences."""
    return {
        "refused": answer.refused,
        "answer_kind": answer.answer_kind,
        "unsupported_sentences": [asdict(u) for u in answer.unsupported_sentences],
    }


def done_payload(answer: Answer) -> dict[str, Any]:
    """The ``done`` event's data: the verified answer's text and everything about it but its sources."""
    return {
        "answer": answer.answer,
        "model": answer.model,
        "timings": answer.timings,
        "usage": answer.usage,
        "cached": answer.cached,
        "cache_kind": answer.cache_kind,
        "cache_similarity": answer.cache_similarity,
        "refused": answer.refused,
        "answer_kind": answer.answer_kind,
        "guardrails": answer.guardrails,
        "unsupported_sentences": [asdict(u) for u in answer.unsupported_sentences],
    }


@dataclass(slots=True)
class Exchange:
    question: str
    conversation_id: str | None
    metrics: Metrics
    parts: list[str] = field(default_factory=list)
    citations: list[CitationPublic] = field(default_factory=list)
    done: DoneEvent | None = None
    status: str = "partial"
    # With both, a sample of finished answers is moderated after the stream (api/moderation.py).
    ask: Ask | None = None
    resources: Resources | None = None
    moderated: bool = False
    # The answer's message ID, told to the client in `done` before the (background) save.
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def record(self, event: StreamEvent) -> tuple[str, object]:
        """The event's name and JSON payload, noting what the saved exchange needs."""
        if isinstance(event, TokenEvent):
            self.parts.append(event.text)
            return "token", event.text
        if isinstance(event, CitationsEvent):
            self.citations = [CitationPublic.from_domain(c) for c in event.citations]
            return "citations", [c.model_dump() for c in self.citations]
        if isinstance(event, SentenceRemovedEvent):
            return "sentence_removed", {"sentence": event.sentence, "reason": event.reason}
        if isinstance(event, RefusalEvent):
            # The streamed text is withdrawn; the conversation keeps the refusal instead.
            self.parts = [event.text]
            return "refusal", {"answer": event.text}
        result = event.answer
        # What was streamed, verified and whole: the conversation keeps it.
        self.done, self.status, self.parts = event, "complete", [result.answer]
        if self.ask is not None and self.resources is not None:
            self.moderated = moderation.pick(
                self.resources, cached=result.cached, refused=result.refused, guardrails=result.guardrails
            )
        record_answer_metrics(
            self.metrics, cached=result.cached, usage=result.usage, cache_kind=result.cache_kind
        )
        payload = done_payload(result)
        if self.conversation_id is not None:
            payload["message_id"] = self.message_id
        return "done", payload

    def failed(self) -> None:
        self.status = "error"

    def save_later(self, resources: Resources, background: BackgroundWork) -> None:
        """Save the exchange in its conversation in the background (nothing without one); start
        its moderation when it was picked and ran to its end."""
        if self.moderated and self.status == "complete" and self.ask is not None:
            answer = "".join(self.parts).strip()
            moderation.schedule(resources, background, self.metrics, ask=self.ask, answer=answer)
        if self.conversation_id is None:
            return
        background.spawn(
            save_exchange(
                resources,
                conversation_id=self.conversation_id,
                question=self.question,
                answer="".join(self.parts).strip(),
                citations=self.citations,
                model=self.done.answer.model if self.done else None,
                timings=self.done.answer.timings if self.done else {},
                status=self.status,
                answer_id=self.message_id,
                verdict=answer_verdict(self.done.answer) if self.done else None,
            ),
            name="save-exchange",
        )
