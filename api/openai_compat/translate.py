"""OpenAI requests into Lore's questions, Lore's answers into OpenAI's content (pure).

- ``lore`` names every corpus the caller may read, ``lore:<corpus>`` one of them.
- The last message is the question; the user and assistant messages before it are the history that
  feeds follow-up rewriting and the prompt, as a conversation's turns do (the latest
  ``HISTORY_TURNS``). System and developer messages are ignored: Lore's prompt and guardrails decide
  how it answers, and an instruction there could not override them anyway.
- Citations reach a plain client as a numbered list appended to the content; an assistant message
  that comes back as history has that list taken off again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from api.conversations.service import HISTORY_TURNS
from api.openai_compat.errors import OpenAIError
from api.openai_compat.schemas import ChatCompletionRequest, ChatMessage
from api.schemas import CitationPublic
from core.components.llm import Message
from core.settings import LLMSettings

MODEL = "lore"
MAX_STOP_SEQUENCES = 4
SOURCES_HEADING = "Sources:"
# The list sources_block appends, at the very end of a message.
_SOURCES_BLOCK = re.compile(r"\n\nSources:\n(?:\[\d+\] [^\n]*(?:\n|$))+\Z")


def corpus_of(model: str) -> str | None:
    """The corpus a model name selects (None: every corpus the caller may read); 404 for other names."""
    if model == MODEL:
        return None
    prefix = f"{MODEL}:"
    if model.startswith(prefix) and model[len(prefix) :].strip():
        return model[len(prefix) :]
    raise OpenAIError(
        404,
        f"The model {model!r} does not exist: use {MODEL!r} or '{MODEL}:<corpus>' (GET /v1/models).",
        param="model",
        code="model_not_found",
    )


def model_id(corpus: str) -> str:
    return f"{MODEL}:{corpus}"


@dataclass(frozen=True, slots=True)
class Conversation:
    """The question, and the turns before it (oldest first) as the answer service takes them."""

    question: str
    history: tuple[Message, ...]


def conversation(messages: Sequence[ChatMessage], *, turns: int = HISTORY_TURNS) -> Conversation:
    """The question and history in ``messages``: the last user message after which only system
    or developer messages come, and the user and assistant messages before it."""
    spoken = [(i, m) for i, m in enumerate(messages) if m.role not in ("system", "developer")]
    if not spoken or spoken[-1][1].role != "user":
        raise OpenAIError(
            400,
            "The last message (system and developer messages aside) must be the user's question.",
            param="messages",
            code="invalid_value",
        )
    last, asked = spoken[-1]
    if asked.has_other_parts() or not asked.text().strip():
        raise OpenAIError(
            400,
            "The question must be text, and not empty (only text content is supported).",
            param=f"messages[{last}].content",
            code="invalid_value",
        )
    history: list[Message] = []
    for _, message in spoken[:-1]:
        if message.role not in ("user", "assistant") or not (text := message.text().strip()):
            continue
        if message.role == "assistant":
            text = strip_sources(text)
        history.append({"role": message.role, "content": text})
    return Conversation(asked.text(), tuple(history[-turns:]) if turns else ())


@dataclass(frozen=True, slots=True)
class Generation:
    """What a request asks of the LLM, within the server's limits."""

    max_tokens: int
    temperature: float | None
    stop: tuple[str, ...]


def generation(body: ChatCompletionRequest, llm: LLMSettings) -> Generation:
    """The request's max_tokens (at most ``llm.max_tokens``: the prompt leaves that much room),
    temperature (at most ``llm.max_temperature``) and stop sequences; n must be 1."""
    if body.n not in (None, 1):
        raise OpenAIError(400, "Only n=1 is supported.", param="n", code="unsupported_value")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or ())
    if len(stop) > MAX_STOP_SEQUENCES:
        raise OpenAIError(
            400,
            f"At most {MAX_STOP_SEQUENCES} stop sequences are supported.",
            param="stop",
            code="invalid_value",
        )
    asked = body.max_completion_tokens or body.max_tokens
    temperature = None if body.temperature is None else min(body.temperature, llm.max_temperature)
    return Generation(
        max_tokens=min(asked or llm.max_tokens, llm.max_tokens),
        temperature=temperature,
        stop=tuple(s for s in stop if s),
    )


def sources_block(citations: Iterable[CitationPublic]) -> str:
    """The numbered list of cited sources appended to the content ("" without citations)."""
    lines = []
    for citation in citations:
        where = citation.source + (f", page {citation.page}" if citation.page is not None else "")
        title = citation.title.strip()
        lines.append(
            f"[{citation.n}] {title} — {where}"
            if title and title != citation.source
            else f"[{citation.n}] {where}"
        )
    return f"\n\n{SOURCES_HEADING}\n" + "\n".join(lines) if lines else ""


def strip_sources(text: str) -> str:
    """``text`` without the sources list :func:`sources_block` appended to it."""
    return _SOURCES_BLOCK.sub("", text).rstrip()
