"""Readiness: each dependency checked at once, and whether Lore can serve without the ones that fail.

The database, the vector store and the LLM are needed by every answer: one failing makes Lore
``unavailable``. The cache, the job queue and (unless its limits fail closed) the rate limiter are
not: Lore answers without them, ``degraded`` (docs/operations.md has the table).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import text

from core.components.llm import OpenAICompatibleLLM
from core.components.ratelimit import RateLimiter
from core.resources import Resources

log = logging.getLogger("lore.api")

CHECK_TIMEOUT_S = 2.0
CheckResult = Literal["ok", "failed", "timeout"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"] = Field(
        description="ready: every check passed; degraded: Lore answers, without what failed; "
        "unavailable: a dependency every answer needs failed."
    )
    checks: dict[str, CheckResult] = Field(
        description="Each dependency's check; the server log says why one failed."
    )

    @property
    def failed(self) -> list[str]:
        """The checks that did not pass."""
        return [name for name, result in self.checks.items() if result != "ok"]


async def _database(resources: Resources) -> None:
    async with resources.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _llm(resources: Resources) -> None:
    # In process the model loaded with the resources; a server is asked for its model list.
    if not isinstance(resources.llm, OpenAICompatibleLLM):
        return
    settings = resources.settings.llm
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
        response = await client.get(f"{(settings.base_url or '').rstrip('/')}/models", headers=headers)
        response.raise_for_status()


async def _check(name: str, check: Awaitable[object]) -> CheckResult:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check
    except TimeoutError:
        log.warning("readiness check %s timed out after %s s", name, CHECK_TIMEOUT_S)
        return "timeout"
    except Exception as exc:  # any failure means not ready; the log keeps the reason
        log.warning("readiness check %s failed: %s", name, exc)
        return "failed"
    return "ok"


async def check_readiness(resources: Resources, limiter: RateLimiter) -> Readiness:
    """Check every dependency at once (each within :data:`CHECK_TIMEOUT_S`)."""
    checks: dict[str, Awaitable[object]] = {
        "database": _database(resources),
        "vector_store": resources.store.collections(),
        "llm": _llm(resources),
        "rate_limiter": limiter.ping(),
        "cache": resources.cache.ping(),
    }
    if resources.queue is not None:
        checks["queue"] = resources.queue.ping()
    results = await asyncio.gather(*(_check(name, check) for name, check in checks.items()))
    outcome = dict(zip(checks, results, strict=True))
    limits = resources.settings.rate_limit
    required = {"database", "vector_store", "llm"}
    if limits.enabled and limits.on_backend_error == "closed":
        required.add("rate_limiter")
    failed = {name for name, result in outcome.items() if result != "ok"}
    status: Literal["ready", "degraded", "unavailable"] = (
        "unavailable" if failed & required else "degraded" if failed else "ready"
    )
    return Readiness(status=status, checks=outcome)
