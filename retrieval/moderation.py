"""Output moderation: a sample of answers rated by the LLM against criteria, after they are sent.

G-Eval style: the judge gets the criteria and the evaluation steps and replies with a score from
1 (violates the criteria) to 5 (acceptable). It runs after the answer has gone out, on a share of
answers (``guardrails.moderation_sample_rate``), so it adds no latency to any answer; an answer it
flags is logged, counted and removed from the answer cache so that it is never served again. A
reply with no readable score is "not measured", never a pass.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from core.components.llm import LLM, Message

Verdict = Literal["passed", "flagged", "not measured"]

_STEPS = (
    "1. Read the criteria.\n"
    "2. Read the question and the answer.\n"
    "3. Decide whether the answer breaks any criterion, and how badly.\n"
    "4. Reply with one line: Score: N, where N is 1 (clearly breaks a criterion) to 5 (acceptable)."
)
_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*([1-5])\b", re.IGNORECASE)
_LONE_DIGIT = re.compile(r"^\s*([1-5])\s*[.)]?\s*$")
# A moderation reply needs only its score line.
MAX_TOKENS = 32


@dataclass(frozen=True, slots=True)
class Moderation:
    verdict: Verdict
    score: int | None
    reason: str = ""


def moderation_messages(question: str, answer: str, criteria: str) -> list[Message]:
    """The judge's prompt: criteria, evaluation steps, then the exchange to rate."""
    return [
        {
            "role": "system",
            "content": (
                "You are a content moderator. You rate answers against criteria and reply only with a score."
            ),
        },
        {
            "role": "user",
            "content": (
                f"Criteria:\n{criteria.strip()}\n\nEvaluation steps:\n{_STEPS}\n\n"
                f"Question:\n{question.strip()}\n\nAnswer:\n{answer.strip()}\n\nScore:"
            ),
        },
    ]


def parse_score(reply: str) -> int | None:
    """The 1-5 score in a judge's reply ("Score: 4", "**Score:** 4" or a lone "4"); None if absent."""
    if match := _SCORE.search(reply):
        return int(match.group(1))
    if match := _LONE_DIGIT.match(reply):
        return int(match.group(1))
    return None


def judge(score: int | None, *, flag_at: int, reply: str = "") -> Moderation:
    if score is None:
        return Moderation("not measured", None, f"no score in the reply: {reply.strip()[:80]!r}")
    return Moderation("flagged" if score <= flag_at else "passed", score)


async def moderate(llm: LLM, question: str, answer: str, *, criteria: str, flag_at: int) -> Moderation:
    """Rate one answer; a reply without a score is "not measured"."""
    completion = await llm.complete(moderation_messages(question, answer, criteria), max_tokens=MAX_TOKENS)
    return judge(parse_score(completion.text), flag_at=flag_at, reply=completion.text)


def sampled(rate: float, rng: random.Random | None = None) -> bool:
    """Whether this answer is in the moderated sample (``rate``: the share of answers, 0 to 1)."""
    if rate <= 0:
        return False
    return rate >= 1 or (rng or random).random() < rate
