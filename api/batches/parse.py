"""A batch's JSONL input into lines (pure): each line a question, or the error that makes it one.

Two shapes are read. Lore's: ``{"custom_id": "q1", "question": "...", "corpus": "handbook",
"k": 4}`` (only ``question`` is required). OpenAI's batch input: ``{"custom_id": ..., "method":
"POST", "url": "/v1/chat/completions", "body": {"model": "lore:handbook", "messages": [...]}}``,
where the last user message is the question and the model names the corpus (``lore``: every corpus
the caller may read). A line that is neither is kept with its error, so the rest still run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from api.inputs import unstorable
from api.openai_compat.errors import OpenAIError
from api.openai_compat.schemas import ChatCompletionRequest
from api.openai_compat.translate import conversation, corpus_of
from core.errors import InvalidInputError

MAX_CUSTOM_ID = 200
MAX_CORPUS_NAME = 200
CHAT_COMPLETIONS = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Line:
    """One input line: its question and scope, or ``error`` when it cannot be asked."""

    custom_id: str | None = None
    question: str | None = None
    corpus: str | None = None
    k: int | None = None
    error: str | None = None


def parse_batch(text: str, *, corpus: str | None = None, max_lines: int) -> list[Line]:
    """The non-blank lines of ``text`` in order; ``corpus`` is the default of lines naming none.

    Raises :class:`InvalidInputError` for no lines or more than ``max_lines``.
    """
    raw = [line for line in text.splitlines() if line.strip()]
    if not raw:
        raise InvalidInputError("the batch holds no lines: send one JSON object a line")
    if len(raw) > max_lines:
        raise InvalidInputError(
            f"the batch holds {len(raw)} lines, more than {max_lines} (setting batch.max_lines)"
        )
    return [parse_line(line, corpus=corpus) for line in raw]


def parse_line(text: str, *, corpus: str | None = None) -> Line:
    try:
        value: Any = json.loads(text)
    except ValueError as exc:
        return Line(error=f"not JSON: {exc}")
    if not isinstance(value, dict):
        return Line(error="not a JSON object")
    custom_id = value.get("custom_id")
    if custom_id is not None and (not isinstance(custom_id, str) or len(custom_id) > MAX_CUSTOM_ID):
        return Line(error=f"custom_id must be a string of at most {MAX_CUSTOM_ID} characters")
    if (where := unstorable(value, "line")) is not None:
        return Line(
            custom_id=None if unstorable(custom_id, "") else custom_id,
            error=f"{where}: NUL or a lone surrogate",
        )
    try:
        return _openai(value, custom_id) if "body" in value else _lore(value, custom_id, corpus)
    except (InvalidInputError, OpenAIError) as exc:
        return Line(custom_id=custom_id, error=exc.message)


def _lore(value: dict[str, Any], custom_id: str | None, default_corpus: str | None) -> Line:
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("missing question: give `question`, a non-empty string")
    corpus = value.get("corpus", default_corpus)
    if corpus is not None and (not isinstance(corpus, str) or not 0 < len(corpus) <= MAX_CORPUS_NAME):
        raise InvalidInputError("corpus must be a corpus name")
    k = value.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
        raise InvalidInputError("k must be an integer")
    return Line(custom_id=custom_id, question=question, corpus=corpus, k=k)


def _openai(value: dict[str, Any], custom_id: str | None) -> Line:
    if value.get("method", "POST") != "POST" or value.get("url", CHAT_COMPLETIONS) != CHAT_COMPLETIONS:
        raise InvalidInputError(f"only POST {CHAT_COMPLETIONS} lines are supported")
    try:
        body = ChatCompletionRequest.model_validate(value["body"])
    except ValidationError as exc:
        raise InvalidInputError(f"not a chat completion request: {exc.errors()[0]['msg']}") from exc
    corpus = corpus_of(body.model)
    if corpus is not None and len(corpus) > MAX_CORPUS_NAME:
        raise InvalidInputError("the model's corpus must be a corpus name")
    return Line(custom_id=custom_id, question=conversation(body.messages).question, corpus=corpus)
