"""Per-caller rate limits: a dependency per route class, and a check per WebSocket message.

Each caller (``Principal.rate_key``) has one bucket per class, sized by ``settings.rate_limit``.
Routes add ``dependencies=[QueryRateLimit]`` (or ``IngestRateLimit``, ``AdminRateLimit``,
``EvalRateLimit``); allowed
responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until
the bucket is full), refused ones are 429 with ``Retry-After`` (see ``api/errors.py``).

Credential routes have no caller yet: a refresh spends from the client address's bucket, a password
login from the address's and the username's, so neither many usernames from one address nor one
username from many addresses gets more guesses. While the limiter's Redis fails, hits do what
``rate_limit.on_backend_error`` (``login_on_backend_error`` for these) says.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, Response
from fastapi.security import OAuth2PasswordRequestForm
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
from core.components.ratelimit import Decision, OnBackendError, RateLimiter
from core.errors import RateLimitedError
from core.settings import RateLimitSettings, Settings

RouteClass = Literal["query", "ingest", "admin", "eval"]
LimitClass = RouteClass | Literal["websocket", "login"]
# Classes whose bucket is the user's, whatever key or token they call with: one user's eval runs
# are one budget, however many API keys an admin gave them.
PER_USER: frozenset[LimitClass] = frozenset({"eval"})
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
        case "eval":
            return limits.eval_burst, limits.eval_per_minute / 60
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
    on_error: OnBackendError = (
        limits.login_on_backend_error if limit_class == "login" else limits.on_backend_error
    )
    decision = await limiter.hit(
        f"{limit_class}:{rate_key}", capacity=capacity, refill_per_s=refill_per_s, on_backend_error=on_error
    )
    if not decision.allowed:
        metrics.count_rate_limited(limit_class)
        raise RateLimitedError(
            f"too many {limit_class} requests: retry in {max(1, math.ceil(decision.retry_after_s))} s",
            retry_after_s=decision.retry_after_s,
            limit=decision.limit,
            remaining=decision.remaining,
        )
    return decision


async def wait_for_token(
    limiter: RateLimiter, limits: RateLimitSettings, *, limit_class: LimitClass, rate_key: str
) -> None:
    """Spend one token of ``rate_key``'s ``limit_class`` bucket, waiting until it has one (work in the
    background, e.g. a batch's lines, waits where a request would be refused)."""
    capacity, refill_per_s = _policy(limits, limit_class)
    while True:
        decision = await limiter.hit(
            f"{limit_class}:{rate_key}",
            capacity=capacity,
            refill_per_s=refill_per_s,
            on_backend_error=limits.on_backend_error,
        )
        if decision.allowed:
            return
        await asyncio.sleep(max(decision.retry_after_s, 0.05))


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
        rate_key = f"user:{principal.user_id}" if route_class in PER_USER else principal.rate_key
        decision = await _spend(
            limiter, settings.rate_limit, metrics, limit_class=route_class, rate_key=rate_key
        )
        # FastAPI copies these onto the reply unless the route returns a Response object itself.
        response.headers.update(rate_limit_headers(decision))

    return limit


QueryRateLimit = Depends(rate_limit("query"))
IngestRateLimit = Depends(rate_limit("ingest"))
AdminRateLimit = Depends(rate_limit("admin"))
EvalRateLimit = Depends(rate_limit("eval"))


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


async def spend_query(
    limiter: RateLimiter, limits: RateLimitSettings, metrics: Metrics, *, principal: Principal
) -> None:
    """Spend one token of ``principal``'s query bucket for a question that reaches Lore outside a
    route (an MCP tool call), or raise :class:`RateLimitedError`: one budget with ``/v1/query``."""
    if limits.enabled:
        await _spend(limiter, limits, metrics, limit_class="query", rate_key=principal.rate_key)


def _client_address(connection: HTTPConnection) -> str:
    # The peer, or what a trusted proxy's X-Forwarded-For says (server.trusted_proxies, under
    # `lore serve`); a header from anyone else never reaches here.
    return connection.client.host if connection.client else "unknown"


async def _login_limit(
    connection: HTTPConnection,
    limiter: RateLimiterDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    response: Response,
) -> None:
    """Spend one token of the client address's login bucket, or raise 429."""
    if not settings.rate_limit.enabled:
        return
    decision = await _spend(
        limiter,
        settings.rate_limit,
        metrics,
        limit_class="login",
        rate_key=f"ip:{_client_address(connection)}",
    )
    response.headers.update(rate_limit_headers(decision))


async def _password_login_limit(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], connection: HTTPConnection, response: Response
) -> None:
    await spend_password_login(connection, response, username=form.username)


async def spend_password_login(connection: HTTPConnection, response: Response, *, username: str) -> None:
    """Spend one token of the client address's login bucket and one of the username's, or raise 429
    (the password logins' limit, for a route whose body is not the OAuth2 form)."""
    settings: Settings = connection.app.state.settings
    if not settings.rate_limit.enabled:
        return
    limits, limiter, metrics = settings.rate_limit, get_rate_limiter(connection), get_metrics(connection)
    by_address = await _spend(
        limiter, limits, metrics, limit_class="login", rate_key=f"ip:{_client_address(connection)}"
    )
    # Hashed: the key's length and characters are then Lore's, whatever a caller types.
    user = hashlib.sha256(username.encode()).hexdigest()[:32]
    by_user = await _spend(limiter, limits, metrics, limit_class="login", rate_key=f"user:{user}")
    response.headers.update(rate_limit_headers(min(by_address, by_user, key=lambda d: d.remaining)))


LoginRateLimit = Depends(_login_limit)
PasswordLoginRateLimit = Depends(_password_login_limit)
