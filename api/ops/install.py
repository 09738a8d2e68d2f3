"""Wiring: :func:`install_ops` adds the middlewares and routes; :func:`closing_ops` releases them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.ops.access import AccessMiddleware
from api.ops.body_limit import BodySizeLimitMiddleware
from api.ops.metrics import Metrics
from api.ops.ratelimit import RATE_LIMIT_HEADERS
from api.ops.request_id import HEADER as REQUEST_ID_HEADER
from api.ops.request_id import RequestIdMiddleware
from api.ops.routes import router
from core.components.ratelimit import RateLimiter, open_rate_limiter
from core.settings import Settings


def install_ops(app: FastAPI, settings: Settings) -> None:
    """Give ``app`` its settings, rate limiter and metrics, the ops middlewares and routes.

    Call it before the app serves, and enter :func:`closing_ops` in the app's lifespan.
    """
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.rate_limiter = open_rate_limiter(settings, on_error=metrics.count_rate_limit_error)
    # The last added runs first: request ID, then access log and metrics, then CORS (so 413s and
    # 429s carry CORS headers and browsers can read them), then the body limit.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After", *RATE_LIMIT_HEADERS],
        )
    app.add_middleware(AccessMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(router)


@asynccontextmanager
async def closing_ops(app: FastAPI) -> AsyncIterator[None]:
    """Close what :func:`install_ops` opened (the rate limiter's connections) on exit."""
    try:
        yield
    finally:
        limiter: RateLimiter = app.state.rate_limiter
        await limiter.close()
