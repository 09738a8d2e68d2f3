"""Key-value cache adapter: Redis, or a bounded LRU in process.

Both backends store bytes under string keys, namespaced by a prefix so several apps can share one
Redis, with an optional time to live per entry. :func:`open_cache` wraps Redis in
:class:`FailSoftCache`: a cache that does not answer is no cache (misses, writes dropped), never
a failed request, and it is used again as soon as it answers.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.components.outage import ErrorHook, Outage
from core.errors import BackendError, ConfigurationError
from core.settings import CacheSettings

DEFAULT_PREFIX = "lore:"


class Cache(ABC):
    """Bytes under string keys, each with an optional time to live.

    ``set`` without ``ttl_s`` uses the cache's ``default_ttl_s``; when that is None too, the entry
    lives until it is deleted or evicted.
    """

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, default_ttl_s: float | None = None) -> None:
        if default_ttl_s is not None:
            _check_ttl(default_ttl_s)
        self.prefix = prefix
        self.default_ttl_s = default_ttl_s

    def _ttl(self, ttl_s: float | None) -> float | None:
        if ttl_s is None:
            return self.default_ttl_s
        _check_ttl(ttl_s)
        return ttl_s

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None when it is missing or expired."""

    @abstractmethod
    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any earlier value and its expiry."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`BackendError` unless the backend answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


def _check_ttl(ttl_s: float) -> None:
    if not ttl_s > 0:
        raise ValueError(f"a cache TTL must be positive, not {ttl_s}")


class InProcessCache(Cache):
    """An LRU bounded by entry count, for one event loop; expired entries are dropped on read."""

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        prefix: str = DEFAULT_PREFIX,
        default_ttl_s: float | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        super().__init__(prefix=prefix, default_ttl_s=default_ttl_s)
        self.max_entries = max_entries
        # key -> (value, monotonic expiry or None); most recently used last.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        name = self.prefix + key
        entry = self._entries.get(name)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and time.monotonic() >= expires_at:
            del self._entries[name]
            return None
        self._entries.move_to_end(name)
        return value

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        ttl = self._ttl(ttl_s)
        name = self.prefix + key
        self._entries[name] = (value, None if ttl is None else time.monotonic() + ttl)
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._entries.pop(self.prefix + key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()


class RedisCache(Cache):
    """A Redis server through ``redis.asyncio``; failures raise :class:`BackendError`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        default_ttl_s: float | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(prefix=prefix, default_ttl_s=default_ttl_s)
        self.where = redis_location(url)
        try:
            # Query parameters in the URL (socket_timeout=...) win over these defaults.
            self._client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL for {self.where}: {exc}") from exc

    def _error(self, command: str, exc: RedisError) -> BackendError:
        return BackendError(f"Redis at {self.where} failed on {command}: {exc}")

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self.prefix + key)
        except RedisError as exc:
            raise self._error("GET", exc) from exc
        # A URL asking for decode_responses hands back text; the interface promises bytes.
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        ttl = self._ttl(ttl_s)
        # PX takes whole milliseconds, at least 1; rounding up never shortens a lifetime.
        px = None if ttl is None else max(1, math.ceil(ttl * 1000))
        try:
            await self._client.set(self.prefix + key, value, px=px)
        except RedisError as exc:
            raise self._error("SET", exc) from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(self.prefix + key)
        except RedisError as exc:
            raise self._error("DEL", exc) from exc

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise self._error("PING", exc) from exc

    async def close(self) -> None:
        await self._client.aclose()


class FailSoftCache(Cache):
    """``inner`` where a failure is a miss (or a dropped write), reported to ``outage``.

    While ``outage`` says to wait after a failure, calls skip ``inner`` altogether.
    """

    def __init__(self, inner: Cache, outage: Outage) -> None:
        super().__init__(prefix=inner.prefix, default_ttl_s=inner.default_ttl_s)
        self.inner = inner
        self.outage = outage

    async def get(self, key: str) -> bytes | None:
        if not self.outage.should_try():
            return None
        try:
            value = await self.inner.get(key)
        except BackendError as exc:
            self.outage.failed("get", exc)
            return None
        self.outage.succeeded()
        return value

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        if not self.outage.should_try():
            return
        try:
            await self.inner.set(key, value, ttl_s=ttl_s)
        except BackendError as exc:
            self.outage.failed("set", exc)
            return
        self.outage.succeeded()

    async def delete(self, key: str) -> None:
        # A delete evicts a bad answer: skipping it while the backend is down loses nothing it holds.
        if not self.outage.should_try():
            return
        try:
            await self.inner.delete(key)
        except BackendError as exc:
            self.outage.failed("delete", exc)
            return
        self.outage.succeeded()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def redis_location(url: str) -> str:
    """Where a Redis URL points (host and port, or socket path), without its credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = None
    host = parts.hostname or "localhost"
    return f"{host}:{port}" if port is not None else host


def cache_outage(settings: CacheSettings, *, on_error: ErrorHook | None = None) -> Outage:
    """The outage tracker of the cache's Redis (shared by the answer cache and the semantic index)."""
    where = redis_location(settings.redis_url) if settings.redis_url else "in process"
    return Outage(f"the answer cache's Redis at {where}", retry_s=settings.outage_retry_s, on_error=on_error)


def open_cache(
    settings: CacheSettings, *, prefix: str = DEFAULT_PREFIX, outage: Outage | None = None
) -> Cache:
    """The cache backend the settings choose: Redis (failing soft, into ``outage``) when a URL is set,
    else in process."""
    if settings.redis_url:
        redis = RedisCache(settings.redis_url, prefix=prefix, default_ttl_s=settings.default_ttl_s)
        return FailSoftCache(redis, outage or cache_outage(settings))
    return InProcessCache(settings.max_entries, prefix=prefix, default_ttl_s=settings.default_ttl_s)
