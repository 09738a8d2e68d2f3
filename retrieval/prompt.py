"""Prompt building: the question and numbered sources as chat messages (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from core.components.llm import Message
from core.types import SearchHit

SYSTEM_PROMPT = (
    "You are Lore, an assistant that answers questions using only the numbered sources given. "
    "Answer briefly and factually. After each fact, cite the source it came from by its number "
    "in square brackets, like [1]. If the sources do not contain the answer, say that the "
    "documents do not contain it."
)


def source_label(n: int, hit: SearchHit) -> str:
    """How one source is introduced in the prompt: its number, title and page."""
    where = f", page {hit.page}" if hit.page is not None else ""
    return f"[{n}] {hit.title}{where}"


def fit_sources(sources: Sequence[SearchHit], *, max_chars: int) -> list[SearchHit]:
    """The leading sources whose text fits in ``max_chars`` (the first one always, cut to fit)."""
    kept: list[SearchHit] = []
    used = 0
    for hit in sources:
        if kept and used + len(hit.text) > max_chars:
            break
        kept.append(hit)
        used += len(hit.text)
    return kept


def build_messages(
    question: str,
    sources: Sequence[SearchHit],
    *,
    max_source_chars: int,
    history: Sequence[Message] = (),
    max_history_chars: int = 2000,
) -> list[Message]:
    """Chat messages asking ``question`` over ``sources``, numbered from 1 in the given order.

    The question comes before the sources and again after them: small models attend most to the
    end of the prompt, and this order gave more answers citing the right document (see
    docs/retrieval.md).
    """
    blocks = [f"{source_label(n, h)}\n{h.text.strip()[:max_source_chars]}" for n, h in enumerate(sources, 1)]
    q = question.strip()
    user = (
        f"Question: {q}\n\nSources:\n\n"
        + "\n\n".join(blocks)
        + f"\n\nUsing only the sources above, answer the question: {q}"
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *recent_history(history, max_history_chars),
        {"role": "user", "content": user},
    ]


def recent_history(history: Sequence[Message], max_chars: int) -> list[Message]:
    """The latest turns of a conversation that fit in ``max_chars``, oldest first."""
    kept: list[Message] = []
    used = 0
    for turn in reversed(history):
        used += len(turn["content"])
        if used > max_chars:
            break
        kept.insert(0, turn)
    return kept
