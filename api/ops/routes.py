"""Readiness and metrics: ``GET /ready`` and ``GET /metrics``, open to all like ``/health``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Literal

import httpx
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.dependencies import MetricsDep, RateLimiterDep, ResourcesDep
from api.ops.metrics import CONTENT_TYPE
from core.components.llm import OpenAICompatibleLLM
from core.resources import Resources

log = logging.getLogger("lore.api")
router = APIRouter(tags=["ops"])

CHECK_TIMEOUT_S = 2.0
CheckResult = Literal["ok", "failed", "timeout"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckResult] = Field(
        description="Each dependency's check; the server log says why one failed."
    )


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


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency failed its check"}},
    summary="Readiness: the database, vector store, LLM and rate limiter answer",
)
async def ready(resources: ResourcesDep, limiter: RateLimiterDep, response: Response) -> Readiness:
    names = ("database", "vector_store", "llm", "rate_limiter")
    results = await asyncio.gather(
        _check("database", _database(resources)),
        _check("vector_store", resources.store.collections()),
        _check("llm", _llm(resources)),
        _check("rate_limiter", limiter.ping()),
    )
    checks = dict(zip(names, results, strict=True))
    if all(result == "ok" for result in results):
        return Readiness(status="ready", checks=checks)
    response.status_code = 503
    return Readiness(status="unavailable", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)
