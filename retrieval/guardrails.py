"""Input guardrails: instructions hidden in retrieved documents, injection in questions, topics.

Retrieved text is data, never instructions: a sentence in a source that tries to steer the model
("ignore the previous instructions...") is replaced by a marker before the prompt is built, so a
poisoned page cannot take over the answer. A question that tries the same is flagged (or refused,
by setting); an optional topic allow-list refuses questions about nothing it names. Every check
records its verdict, which the answer carries in ``guardrails``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from core.settings import GuardrailSettings
from core.types import SearchHit

REMOVED = "[instruction removed by Lore]"

# Phrases that address the model rather than inform a reader. Each is narrow on purpose: a
# document that merely discusses prompt injection should lose a sentence at most, not its meaning.
_INJECTION = re.compile(
    r"|".join(
        [
            r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
            r"(?:previous|prior|above|earlier|preceding|system|original)\s+"
            r"(?:instructions?|prompts?|messages?|rules?|directions?|context)",
            r"\byou\s+are\s+now\s+(?:a|an|the|in)\b",
            r"\b(?:new|updated|real)\s+(?:system\s+)?instructions?\s*:",
            r"^\s*(?:system|assistant)\s*:",
            r"<\s*/?\s*(?:system|instructions?|im_start|im_end)\s*>",
            r"\b(?:reveal|print|repeat|show)\s+(?:your|the)\s+(?:system\s+)?(?:prompt|instructions)\b",
            r"\b(?:as\s+an?\s+ai|language\s+model)\s*,?\s+you\s+(?:must|should|will)\b",
            r"\bdo\s+not\s+(?:tell|inform|warn)\s+the\s+user\b",
        ]
    ),
    re.IGNORECASE | re.MULTILINE,
)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class QuestionCheck:
    """What the input checks found; ``refusal`` is the answer to give instead, when refused."""

    verdicts: dict[str, str]
    refusal: str | None = None


def has_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None


def neutralise(text: str) -> tuple[str, int]:
    """``text`` with each sentence that addresses the model replaced by a marker; and how many."""
    removed = 0

    def sentence(match: re.Match[str]) -> str:
        nonlocal removed
        part = match.group(0)
        if part.strip() and has_injection(part):
            removed += 1
            ending = "\n" if part.endswith("\n") else " "
            return REMOVED + ending
        return part

    return _SENTENCE.sub(sentence, text), removed


def neutralise_sources(hits: list[SearchHit]) -> tuple[list[SearchHit], int]:
    """The sources with hidden instructions removed, and how many sentences went."""
    cleaned: list[SearchHit] = []
    total = 0
    for hit in hits:
        text, removed = neutralise(hit.text)
        total += removed
        cleaned.append(replace(hit, text=text) if removed else hit)
    return cleaned, total


def check_question(question: str, settings: GuardrailSettings) -> QuestionCheck:
    """The question's checks: prompt injection (off, flag or refuse) and the topic allow-list."""
    verdicts: dict[str, str] = {}
    if settings.question_injection != "off":
        if has_injection(question):
            if settings.question_injection == "refuse":
                verdicts["question_injection"] = "refused"
                return QuestionCheck(
                    verdicts, "Lore answers questions about its documents; it does not take new instructions."
                )
            verdicts["question_injection"] = "flagged"
        else:
            verdicts["question_injection"] = "passed"
    if settings.topics:
        words = set(_WORD.findall(question.casefold()))
        if any(set(_WORD.findall(topic.casefold())) <= words for topic in settings.topics):
            verdicts["topics"] = "passed"
        else:
            verdicts["topics"] = "refused"
            return QuestionCheck(
                verdicts,
                "This question is outside the topics Lore answers here: " + ", ".join(settings.topics) + ".",
            )
    return QuestionCheck(verdicts)
