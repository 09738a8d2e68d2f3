"""Output moderation after the answer: sampling, the verdict in the response, the check in the background."""

from __future__ import annotations

import logging

from api.background import BackgroundWork
from api.ops.metrics import Metrics
from core.resources import Resources
from retrieval import service
from retrieval.moderation import moderate, sampled
from retrieval.service import Ask

log = logging.getLogger("lore.moderation")

QUEUED = "sampled: rated after the answer was sent"


def pick(resources: Resources, *, cached: bool, refused: bool, guardrails: dict[str, str]) -> bool:
    """Whether to moderate this answer; a picked answer's guardrails say so.

    Cached answers were picked (or not) when they were made, and refusals are Lore's own words.
    """
    if cached or refused or not sampled(resources.settings.guardrails.moderation_sample_rate):
        return False
    guardrails["moderation"] = QUEUED
    return True


def schedule(
    resources: Resources, background: BackgroundWork, metrics: Metrics, *, ask: Ask, answer: str
) -> None:
    """Rate ``answer`` in the background; a flagged one is logged, counted and evicted from the cache."""
    background.spawn(_check(resources, metrics, ask, answer), name="moderation")


async def _check(resources: Resources, metrics: Metrics, ask: Ask, answer: str) -> None:
    guards = resources.settings.guardrails
    result = await moderate(
        resources.llm,
        ask.question,
        answer,
        criteria=guards.moderation_criteria,
        flag_at=guards.moderation_flag_at,
    )
    metrics.count_moderation(result.verdict)
    if result.verdict == "flagged":
        log.warning("moderation flagged an answer (score %s) to %r", result.score, ask.question[:200])
        await service.forget(resources, ask)
    elif result.verdict == "not measured":
        log.info("moderation not measured: %s", result.reason)
