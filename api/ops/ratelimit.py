"""Per-caller rate limits: a dependency per route class, and a check per WebSocket message.

Each caller (``Principal.rate_key``) has one bucket per class, sized by ``settings.rate_limit``.
Routes add ``dependencies=[QueryRateLimit]`` (or ``IngestRateLimit``, ``AdminRateLimit``); allowed
responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until
the bucket is full), refused ones are 429 with ``Retry-After`` (see ``api/errors.py``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import Depends, Response
from starlette.requests import HTTPConnection

from api.auth.dependencies import CurrentPrincipal
from api.auth.principal import Principal
from api.dependencies import (
    MetricsDep,
    RateLimiterDep,
    SettingsDep,
    get_app_settings,
    get_metrics,
    get_rate_limiter,
)
from api.ops.metrics import Metrics
from core.components.ratelimit import Decision, RateLimiter
from core.errors import RateLimitedError
from core.settings import RateLimitSettings

RouteClass = Literal["query", "ingest", "admin"]
LimitClass = RouteClass | Literal["websocket", "login"]
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def _policy(limits: RateLimitSettings, limit_class: LimitClass) -> tuple[int, float]:
    """The bucket of a class: capacity, and refill in tokens per second."""
    match limit_class:
        case "query":
            return limits.query_burst, limits.query_per_minute / 60
        case "ingest":
            return limits.ingest_burst, limits.ingest_per_minute / 60
        case "admin":
            return limits.admin_burst, limits.admin_per_minute / 60
        case "websocket":
            return limits.websocket_burst, limits.websocket_messages_per_minute / 60
        case "login":
            return limits.login_burst, limits.login_per_minute / 60


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The ``RateLimit-*`` headers of an allowed request."""
    values = (decision.limit, decision.remaining, math.ceil(decision.reset_after_s))
    return {name: str(value) for name, value in zip(RATE_LIMIT_HEADERS, values, strict=True)}


async def _spend(
    limiter: RateLimiter,
    limits: RateLimitSettings,
    metrics: Metrics,
    *,
    limit_class: LimitClass,
    rate_key: str,
) -> Decision:
    capacity, refill_per_s = _policy(limits, limit_class)
    decision = await limiter.hit(f"{limit_class}:{rate_key}", capacity=capacity, refill_per_s=refill_per_s)
    if not decision.allowed:
        metrics.count_rate_limited(limit_class)
        raise RateLimitedError(
            f"too many {limit_class} requests: retry in {max(1, math.ceil(decision.retry_after_s))} s",
            retry_after_s=decision.retry_after_s,
            limit=decision.limit,
            remaining=decision.remaining,
        )
    return decision


def rate_limit(route_class: RouteClass) -> Callable[..., Awaitable[None]]:
    """A dependency spending one token of the caller's ``route_class`` bucket, or raising 429."""

    async def limit(
        principal: CurrentPrincipal,
        limiter: RateLimiterDep,
        metrics: MetricsDep,
        settings: SettingsDep,
        response: Response,
    ) -> None:
        if not settings.rate_limit.enabled:
            return
        decision = await _spend(
            limiter, settings.rate_limit, metrics, limit_class=route_class, rate_key=principal.rate_key
        )
        # FastAPI copies these onto the reply unless the route returns a Response object itself.
        response.headers.update(rate_limit_headers(decision))

    return limit


QueryRateLimit = Depends(rate_limit("query"))
IngestRateLimit = Depends(rate_limit("ingest"))
AdminRateLimit = Depends(rate_limit("admin"))


async def check_websocket_message(connection: HTTPConnection, principal: Principal) -> None:
    """Spend one token of the caller's WebSocket message bucket, or raise :class:`RateLimitedError`."""
    settings = get_app_settings(connection)
    if not settings.rate_limit.enabled:
        return
    await _spend(
        get_rate_limiter(connection),
        settings.rate_limit,
        get_metrics(connection),
        limit_class="websocket",
        rate_key=principal.rate_key,
    )


async def _login_limit(
    connection: HTTPConnection,
    limiter: RateLimiterDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    response: Response,
) -> None:
    """Credential endpoints have no caller yet: their bucket is the client address, against guessing."""
    if not settings.rate_limit.enabled:
        return
    address = connection.client.host if connection.client else "unknown"
    decision = await _spend(
        limiter, settings.rate_limit, metrics, limit_class="login", rate_key=f"ip:{address}"
    )
    response.headers.update(rate_limit_headers(decision))


LoginRateLimit = Depends(_login_limit)
