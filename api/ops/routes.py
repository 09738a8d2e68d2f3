"""Readiness and metrics: ``GET /ready`` and ``GET /metrics``, open to all like ``/health``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.dependencies import MetricsDep, RateLimiterDep, ResourcesDep
from api.ops.metrics import CONTENT_TYPE
from api.ops.readiness import Readiness, check_readiness

router = APIRouter(tags=["ops"])


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency every answer needs failed"}},
    summary="Readiness: the database, vector store, LLM, rate limiter, cache and job queue answer",
    description="200 when ready or degraded (Lore answers without the cache, queue or rate limiter "
    "that failed), 503 when unavailable.",
)
async def ready(resources: ResourcesDep, limiter: RateLimiterDep, response: Response) -> Readiness:
    readiness = await check_readiness(resources, limiter)
    if readiness.status == "unavailable":
        response.status_code = 503
    return readiness


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)
