"""Semantic cache index: question vectors per scope, each pointing at a cached answer's key.

The answers themselves live in the key-value :class:`~core.components.cache.Cache` under their
exact keys; this index only finds, within one scope, the earlier questions closest to a new one.
Two backends: in process (an LRU over every scope) or Redis (a list per scope, shared by every
API process). Both keep at most ``max_per_scope`` entries per scope (the newest), search them by
brute-force cosine, and drop entries older than ``ttl_s``. Like the answer cache, a Redis index
that does not answer fails soft (:class:`FailSoftSemanticIndex`): no match, nothing recorded.
"""

from __future__ import annotations

import math
import struct
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.components.cache import DEFAULT_PREFIX, cache_outage, redis_location
from core.components.outage import Outage
from core.errors import BackendError, ConfigurationError
from core.settings import CacheSettings

# Candidates returned per lookup: the best may point at an answer the cache has since evicted.
MAX_MATCHES = 3
_HEADER = struct.Struct("<dH")  # created (wall clock, s), key length


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    """An earlier question's answer key and its cosine similarity to the new question."""

    key: str
    similarity: float


def best_matches(
    vector: Sequence[float],
    entries: Sequence[tuple[str, np.ndarray]],
    *,
    threshold: float,
    limit: int = MAX_MATCHES,
) -> list[SemanticMatch]:
    """Entries whose cosine with ``vector`` is at least ``threshold``, best first, at most ``limit``."""
    if not entries:
        return []
    query = np.asarray(vector, dtype=np.float32)
    matrix = np.stack([v for _, v in entries])
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
    sims = (matrix @ query) / np.maximum(norms, 1e-12)
    order = np.argsort(-sims, kind="stable")[:limit]
    return [SemanticMatch(entries[i][0], float(sims[i])) for i in order if sims[i] >= threshold]


class SemanticIndex(ABC):
    """Question vectors under scope keys; a scope is searched only for its own entries."""

    def __init__(self, *, max_per_scope: int, ttl_s: float) -> None:
        if max_per_scope < 1:
            raise ValueError(f"max_per_scope must be at least 1, not {max_per_scope}")
        if not ttl_s > 0:
            raise ValueError(f"a TTL must be positive, not {ttl_s}")
        self.max_per_scope = max_per_scope
        self.ttl_s = ttl_s

    @abstractmethod
    async def nearest(self, scope: str, vector: Sequence[float], *, threshold: float) -> list[SemanticMatch]:
        """Live entries of ``scope`` at least ``threshold`` similar to ``vector``, best first."""

    @abstractmethod
    async def add(self, scope: str, vector: Sequence[float], key: str) -> None:
        """Record that the question ``vector`` in ``scope`` was answered under cache key ``key``."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class InProcessSemanticIndex(SemanticIndex):
    """Entries of every scope in one LRU of ``max_entries``, for one event loop."""

    def __init__(self, *, max_entries: int, max_per_scope: int, ttl_s: float) -> None:
        super().__init__(max_per_scope=max_per_scope, ttl_s=ttl_s)
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        # scope -> key -> (vector, monotonic expiry), oldest first; _lru orders every entry.
        self._scopes: dict[str, OrderedDict[str, tuple[np.ndarray, float]]] = {}
        self._lru: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _drop(self, scope: str, key: str) -> None:
        entries = self._scopes.get(scope)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._scopes[scope]
        self._lru.pop((scope, key), None)

    async def nearest(self, scope: str, vector: Sequence[float], *, threshold: float) -> list[SemanticMatch]:
        now = time.monotonic()
        entries = self._scopes.get(scope, OrderedDict())
        for key in [k for k, (_, expires_at) in entries.items() if expires_at <= now]:
            self._drop(scope, key)
        matches = best_matches(vector, [(k, v) for k, (v, _) in entries.items()], threshold=threshold)
        for match in matches[:1]:
            self._lru.move_to_end((scope, match.key))
        return matches

    async def add(self, scope: str, vector: Sequence[float], key: str) -> None:
        entries = self._scopes.setdefault(scope, OrderedDict())
        entries[key] = (np.asarray(vector, dtype=np.float32), time.monotonic() + self.ttl_s)
        entries.move_to_end(key)
        self._lru[(scope, key)] = None
        self._lru.move_to_end((scope, key))
        while len(entries) > self.max_per_scope:
            self._drop(scope, next(iter(entries)))
        while len(self._lru) > self.max_entries:
            self._drop(*next(iter(self._lru)))

    async def close(self) -> None:
        self._scopes.clear()
        self._lru.clear()


class RedisSemanticIndex(SemanticIndex):
    """A Redis list per scope (newest first, trimmed to ``max_per_scope``, expiring after ``ttl_s``)."""

    def __init__(
        self,
        url: str,
        *,
        max_per_scope: int,
        ttl_s: float,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(max_per_scope=max_per_scope, ttl_s=ttl_s)
        self.prefix = prefix
        self.where = redis_location(url)
        try:
            self._client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL for {self.where}: {exc}") from exc

    def _name(self, scope: str) -> str:
        return f"{self.prefix}semantic:{scope}"

    async def nearest(self, scope: str, vector: Sequence[float], *, threshold: float) -> list[SemanticMatch]:
        try:
            records = await self._client.lrange(self._name(scope), 0, self.max_per_scope - 1)
        except RedisError as exc:
            raise BackendError(f"Redis at {self.where} failed on LRANGE: {exc}") from exc
        # Wall clock, not monotonic: the entries were written by other processes, maybe other hosts.
        oldest = time.time() - self.ttl_s
        entries = []
        for raw in records:
            if not isinstance(raw, bytes):
                raise ConfigurationError(
                    f"Redis at {self.where} returns text; the semantic cache needs a URL without "
                    "decode_responses"
                )
            created, length = _HEADER.unpack_from(raw)
            if created > oldest:
                key = raw[_HEADER.size : _HEADER.size + length].decode()
                entries.append((key, np.frombuffer(raw[_HEADER.size + length :], dtype=np.float32)))
        return best_matches(vector, entries, threshold=threshold)

    async def add(self, scope: str, vector: Sequence[float], key: str) -> None:
        encoded = key.encode()
        record = (
            _HEADER.pack(time.time(), len(encoded)) + encoded + np.asarray(vector, dtype=np.float32).tobytes()
        )
        name = self._name(scope)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.lpush(name, record)
                pipe.ltrim(name, 0, self.max_per_scope - 1)
                pipe.pexpire(name, max(1, math.ceil(self.ttl_s * 1000)))
                await pipe.execute()
        except RedisError as exc:
            raise BackendError(f"Redis at {self.where} failed on LPUSH: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


class FailSoftSemanticIndex(SemanticIndex):
    """``inner`` where a failure finds nothing (or records nothing), reported to ``outage``."""

    def __init__(self, inner: SemanticIndex, outage: Outage) -> None:
        super().__init__(max_per_scope=inner.max_per_scope, ttl_s=inner.ttl_s)
        self.inner = inner
        self.outage = outage

    async def nearest(self, scope: str, vector: Sequence[float], *, threshold: float) -> list[SemanticMatch]:
        if not self.outage.should_try():
            return []
        try:
            matches = await self.inner.nearest(scope, vector, threshold=threshold)
        except BackendError as exc:
            self.outage.failed("semantic_nearest", exc)
            return []
        self.outage.succeeded()
        return matches

    async def add(self, scope: str, vector: Sequence[float], key: str) -> None:
        if not self.outage.should_try():
            return
        try:
            await self.inner.add(scope, vector, key)
        except BackendError as exc:
            self.outage.failed("semantic_add", exc)
            return
        self.outage.succeeded()

    async def close(self) -> None:
        await self.inner.close()


def open_semantic_index(
    settings: CacheSettings, *, prefix: str = DEFAULT_PREFIX, outage: Outage | None = None
) -> SemanticIndex | None:
    """The semantic index the settings choose: None when off, Redis (failing soft, into ``outage``)
    when a URL is set, else in process."""
    if not settings.semantic:
        return None
    if settings.redis_url:
        redis = RedisSemanticIndex(
            settings.redis_url,
            max_per_scope=settings.semantic_max_entries,
            ttl_s=settings.default_ttl_s,
            prefix=prefix,
        )
        return FailSoftSemanticIndex(redis, outage or cache_outage(settings))
    return InProcessSemanticIndex(
        max_entries=settings.max_entries,
        max_per_scope=settings.semantic_max_entries,
        ttl_s=settings.default_ttl_s,
    )
