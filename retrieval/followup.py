"""Follow-up questions made standalone before retrieval.

"And how much does it weigh?" retrieves nothing useful on its own: the conversation says what
"it" is. The LLM rewrites the question with the history in view; when it cannot (it fails, or its
reply is not a plausible question), the cheap fallback searches with the recent user turns
prepended, which carries the topic's words to both dense and BM25 search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.components.llm import LLM, Message
from core.errors import LoreError

log = logging.getLogger("lore.retrieval")

# Earlier user turns the fallback prepends, and the turns the LLM is shown.
FALLBACK_TURNS = 2
REWRITE_TURNS = 6
_REWRITE_MAX_TOKENS = 64

REWRITE_INSTRUCTION = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and references with what they refer to. Keep its meaning and language. "
    "Reply with the rewritten question only."
)


def concatenated(question: str, history: Sequence[Message], *, max_chars: int) -> str:
    """The fallback: the last user turns, then the question, cut from the front to ``max_chars``."""
    earlier = [m["content"].strip() for m in history if m["role"] == "user"][-FALLBACK_TURNS:]
    text = " ".join([*earlier, question.strip()])
    return text if len(text) <= max_chars else text[len(text) - max_chars :].lstrip()


def plausible(rewrite: str, question: str, *, max_chars: int) -> bool:
    """Whether the model's reply can stand in for ``question`` (small models ramble or answer instead)."""
    rewrite = rewrite.strip()
    return bool(rewrite) and len(rewrite) <= min(max_chars, 3 * len(question) + 200) and "\n" not in rewrite


async def standalone_question(
    llm: LLM | None, question: str, history: Sequence[Message], *, max_chars: int
) -> tuple[str, str]:
    """The query to retrieve with, and how it was made: "as asked", "rewritten" or "concatenated".

    ``llm`` None skips the rewrite (the setting chose the fallback).
    """
    if not history:
        return question, "as asked"
    if llm is not None:
        transcript = "\n".join(f"{m['role']}: {m['content'].strip()}" for m in history[-REWRITE_TURNS:])
        messages: list[Message] = [
            {"role": "system", "content": REWRITE_INSTRUCTION},
            {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast question: {question.strip()}"},
        ]
        try:
            reply = (await llm.complete(messages, max_tokens=_REWRITE_MAX_TOKENS)).text.strip().strip('"')
        except LoreError as exc:
            log.warning("follow-up rewrite failed, searching with the conversation's words: %s", exc)
        else:
            if plausible(reply, question, max_chars=max_chars):
                return reply, "rewritten"
    return concatenated(question, history, max_chars=max_chars), "concatenated"
