"""Rate limiter adapter: token buckets in Redis (shared by every app process) or in process.

A bucket holds up to ``capacity`` tokens and gains ``refill_per_s`` tokens a second; a hit spends
``cost`` tokens when the bucket has them and is refused, spending nothing, when it has not. A
bucket nobody hits refills to full, and a full bucket is the same as no bucket, so both backends
forget it then: Redis by the key's expiry, the in-process backend by dropping it.

:func:`open_rate_limiter` wraps Redis in :class:`FallbackRateLimiter`: while Redis fails, each hit
says what to do instead (``on_backend_error``): ``local`` buckets in this process, ``open`` (allow)
or ``closed`` (:class:`~core.errors.UnavailableError`).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.components.cache import redis_location
from core.components.outage import ErrorHook, Outage
from core.errors import BackendError, ConfigurationError, UnavailableError
from core.settings import Settings

DEFAULT_PREFIX = "lore:rl:"

# What a hit does while the shared backend fails (see FallbackRateLimiter).
OnBackendError = Literal["local", "open", "closed"]

# One round trip, run atomically by Redis. The clock is the server's TIME, so every app process
# refills buckets by the same clock. Numbers go back as strings: Redis truncates Lua numbers to
# integers in replies.
TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local refill_per_s = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * refill_per_s)
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / refill_per_s * 1000)))
return {allowed, string.format('%.17g', tokens)}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit.

    ``retry_after_s`` is 0 when allowed, else the wait until the bucket holds the hit's cost;
    ``reset_after_s`` is the wait until the bucket is full again.
    """

    allowed: bool
    remaining: int
    retry_after_s: float
    limit: int
    reset_after_s: float


class RateLimiter(ABC):
    """Token buckets under string keys, namespaced by a prefix."""

    def __init__(self, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    @abstractmethod
    async def hit(
        self,
        key: str,
        *,
        capacity: int,
        refill_per_s: float,
        cost: float = 1.0,
        on_backend_error: OnBackendError = "closed",
    ) -> Decision:
        """Spend ``cost`` tokens from ``key``'s bucket if it holds them.

        ``on_backend_error`` matters only to a limiter with a fallback (:class:`FallbackRateLimiter`).
        """

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`BackendError` unless the limiter can answer hits."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and buckets."""


def _check_policy(capacity: int, refill_per_s: float, cost: float) -> None:
    if capacity < 1:
        raise ValueError(f"a bucket's capacity must be at least 1, not {capacity}")
    if not refill_per_s > 0:
        raise ValueError(f"a bucket's refill rate must be positive, not {refill_per_s}")
    if not 0 < cost <= capacity:
        raise ValueError(f"a hit's cost must be positive and at most the capacity {capacity}, not {cost}")


def _decision(*, allowed: bool, tokens: float, capacity: int, refill_per_s: float, cost: float) -> Decision:
    """The decision for a bucket holding ``tokens`` after the hit."""
    return Decision(
        allowed=allowed,
        # The epsilon keeps float noise (2.9999999 after a refill) from hiding a whole token.
        remaining=max(0, math.floor(tokens + 1e-9)),
        retry_after_s=0.0 if allowed else (cost - tokens) / refill_per_s,
        limit=capacity,
        reset_after_s=(capacity - tokens) / refill_per_s,
    )


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float
    full_at: float


class InProcessRateLimiter(RateLimiter):
    """Buckets in a dict, for one event loop; full buckets are dropped and at most ``max_buckets`` kept."""

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets}")
        super().__init__(prefix=prefix)
        self.max_buckets = max_buckets
        self._clock = clock
        # Least recently hit first: a hit moves its bucket to the end.
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    async def hit(
        self,
        key: str,
        *,
        capacity: int,
        refill_per_s: float,
        cost: float = 1.0,
        on_backend_error: OnBackendError = "closed",
    ) -> Decision:
        _check_policy(capacity, refill_per_s, cost)
        now = self._clock()
        bucket = self._buckets.pop(self.prefix + key, None)
        if bucket is None:
            tokens = float(capacity)
        else:
            tokens = min(capacity, bucket.tokens + max(0.0, now - bucket.updated_at) * refill_per_s)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        full_at = now + (capacity - tokens) / refill_per_s
        self._buckets[self.prefix + key] = _Bucket(tokens=tokens, updated_at=now, full_at=full_at)
        self._prune(now)
        return _decision(
            allowed=allowed, tokens=tokens, capacity=capacity, refill_per_s=refill_per_s, cost=cost
        )

    def _prune(self, now: float) -> None:
        # Amortised O(1): buckets idle longest come first and are the likeliest to be full; past the
        # cap the least recently hit goes even if not full (that caller just gets a fresh bucket).
        while self._buckets:
            name, bucket = next(iter(self._buckets.items()))
            if bucket.full_at > now and len(self._buckets) <= self.max_buckets:
                return
            del self._buckets[name]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._buckets.clear()


class RedisRateLimiter(RateLimiter):
    """Buckets as Redis hashes updated by one Lua script; failures raise :class:`BackendError`."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout_s: float = 5.0) -> None:
        super().__init__(prefix=prefix)
        self.where = redis_location(url)
        try:
            self._client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL for {self.where}: {exc}") from exc
        # EVALSHA, and on NOSCRIPT (a restarted or flushed server) SCRIPT LOAD and EVALSHA again.
        self._script = self._client.register_script(TOKEN_BUCKET_LUA)

    async def hit(
        self,
        key: str,
        *,
        capacity: int,
        refill_per_s: float,
        cost: float = 1.0,
        on_backend_error: OnBackendError = "closed",
    ) -> Decision:
        _check_policy(capacity, refill_per_s, cost)
        try:
            allowed, tokens = await self._script(
                keys=[self.prefix + key], args=[capacity, repr(float(refill_per_s)), repr(float(cost))]
            )
        except RedisError as exc:
            raise BackendError(f"Redis at {self.where} failed on the rate-limit script: {exc}") from exc
        return _decision(
            allowed=bool(allowed),
            tokens=float(tokens),
            capacity=capacity,
            refill_per_s=refill_per_s,
            cost=cost,
        )

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise BackendError(f"Redis at {self.where} failed on PING: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


class FallbackRateLimiter(RateLimiter):
    """``primary`` (Redis), and while it fails, what each hit's ``on_backend_error`` says.

    ``local``: buckets in this process (each process limits on its own, so a caller spread over N
    processes gets N times the limit); ``open``: allowed; ``closed``: :class:`UnavailableError`.
    Failures go to ``outage``, which also says when to try ``primary`` again.
    """

    def __init__(self, primary: RateLimiter, outage: Outage) -> None:
        super().__init__(prefix=primary.prefix)
        self.primary = primary
        self.outage = outage
        self.local = InProcessRateLimiter(prefix=primary.prefix)

    async def hit(
        self,
        key: str,
        *,
        capacity: int,
        refill_per_s: float,
        cost: float = 1.0,
        on_backend_error: OnBackendError = "closed",
    ) -> Decision:
        _check_policy(capacity, refill_per_s, cost)
        if self.outage.should_try():
            try:
                decision = await self.primary.hit(
                    key, capacity=capacity, refill_per_s=refill_per_s, cost=cost
                )
            except BackendError as exc:
                self.outage.failed("hit", exc)
            else:
                self.outage.succeeded()
                return decision
        match on_backend_error:
            case "local":
                return await self.local.hit(key, capacity=capacity, refill_per_s=refill_per_s, cost=cost)
            case "open":
                return _decision(
                    allowed=True,
                    tokens=capacity - cost,
                    capacity=capacity,
                    refill_per_s=refill_per_s,
                    cost=cost,
                )
            case "closed":
                raise UnavailableError(
                    "rate limits cannot be checked right now; retry shortly",
                    retry_after_s=max(1.0, self.outage.retry_s),
                )

    async def ping(self) -> None:
        await self.primary.ping()

    async def close(self) -> None:
        await self.local.close()
        await self.primary.close()


def open_rate_limiter(
    settings: Settings, *, prefix: str = DEFAULT_PREFIX, on_error: ErrorHook | None = None
) -> RateLimiter:
    """The limiter the settings choose: Redis (with its fallback; failures go to ``on_error``) when
    ``cache.redis_url`` is set, else in process."""
    if url := settings.cache.redis_url:
        redis = RedisRateLimiter(url, prefix=prefix)
        outage = Outage(
            f"the rate limiter's Redis at {redis.where}",
            retry_s=settings.cache.outage_retry_s,
            on_error=on_error,
        )
        return FallbackRateLimiter(redis, outage)
    return InProcessRateLimiter(prefix=prefix)
