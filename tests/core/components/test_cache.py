"""Both cache backends pass the same behaviour tests: in process, and a real Redis server."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.components.cache import (
    Cache,
    FailSoftCache,
    InProcessCache,
    RedisCache,
    cache_outage,
    open_cache,
)
from core.errors import BackendError
from core.settings import CacheSettings
from tests.restartable import redis_server

CacheFactory = Callable[..., Cache]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheFactory]:
    """Builds caches of one backend, each with its own random prefix; Redis keys are removed after."""
    url: str | None = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[Cache] = []

    def factory(*, default_ttl_s: float | None = None) -> Cache:
        prefix = f"lore-test:{uuid.uuid4().hex}:"
        cache: Cache
        if url is None:
            cache = InProcessCache(prefix=prefix, default_ttl_s=default_ttl_s)
        else:
            cache = RedisCache(url, prefix=prefix, default_ttl_s=default_ttl_s)
        made.append(cache)
        return cache

    try:
        yield factory
    finally:
        for cache in made:
            await cache.close()
        if url is not None:
            raw = Redis.from_url(url)
            try:
                for cache in made:
                    async for name in raw.scan_iter(match=f"{cache.prefix}*"):
                        await raw.delete(name)
            finally:
                await raw.aclose()


async def test_get_of_a_missing_key_is_none(make_cache: CacheFactory) -> None:
    assert await make_cache().get("missing") is None


async def test_set_then_get_returns_the_bytes(make_cache: CacheFactory) -> None:
    cache = make_cache()
    await cache.set("answer", b"\x00forty-two\xff")
    assert await cache.get("answer") == b"\x00forty-two\xff"


async def test_set_overwrites_the_earlier_value(make_cache: CacheFactory) -> None:
    cache = make_cache()
    await cache.set("k", b"first")
    await cache.set("k", b"second")
    assert await cache.get("k") == b"second"


async def test_delete_removes_the_key_and_ignores_missing_ones(make_cache: CacheFactory) -> None:
    cache = make_cache()
    await cache.set("k", b"v")
    await cache.delete("k")
    await cache.delete("never-set")
    assert await cache.get("k") is None


async def test_entries_expire_after_their_ttl(make_cache: CacheFactory) -> None:
    cache = make_cache()
    await cache.set("short", b"v", ttl_s=0.2)
    await cache.set("forever", b"v")
    assert await cache.get("short") == b"v"
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("forever") == b"v"


async def test_set_without_ttl_uses_the_cache_default(make_cache: CacheFactory) -> None:
    cache = make_cache(default_ttl_s=0.2)
    await cache.set("defaulted", b"v")
    await cache.set("explicit", b"v", ttl_s=60)
    await asyncio.sleep(0.3)
    assert await cache.get("defaulted") is None
    assert await cache.get("explicit") == b"v"


async def test_overwrite_replaces_the_earlier_expiry(make_cache: CacheFactory) -> None:
    cache = make_cache()
    await cache.set("k", b"old", ttl_s=0.2)
    await cache.set("k", b"new")
    await asyncio.sleep(0.3)
    assert await cache.get("k") == b"new"


async def test_a_ttl_must_be_positive(make_cache: CacheFactory) -> None:
    cache = make_cache()
    with pytest.raises(ValueError, match="positive"):
        await cache.set("k", b"v", ttl_s=0)


async def test_caches_with_different_prefixes_do_not_see_each_others_keys(
    make_cache: CacheFactory,
) -> None:
    first, second = make_cache(), make_cache()
    await first.set("shared-name", b"first")
    await second.set("shared-name", b"second")
    await first.set("only-first", b"v")
    assert await first.get("shared-name") == b"first"
    assert await second.get("shared-name") == b"second"
    assert await second.get("only-first") is None
    await second.delete("shared-name")
    assert await first.get("shared-name") == b"first"


async def test_in_process_cache_evicts_the_least_recently_used_entry() -> None:
    cache = InProcessCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.set("c", b"3")
    assert await cache.get("a") is None
    assert await cache.get("b") == b"2"
    assert await cache.get("c") == b"3"


async def test_in_process_cache_read_refreshes_recency() -> None:
    cache = InProcessCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert await cache.get("a") == b"1"
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"


@pytest.mark.redis
async def test_redis_stores_prefixed_keys_with_a_millisecond_expiry(redis_url: str) -> None:
    prefix = f"lore-test:{uuid.uuid4().hex}:"
    cache = RedisCache(redis_url, prefix=prefix)
    raw = Redis.from_url(redis_url)
    try:
        await cache.set("k", b"v", ttl_s=30)
        assert await raw.get(f"{prefix}k") == b"v"
        assert 29_000 < await raw.pttl(f"{prefix}k") <= 30_000
    finally:
        await raw.delete(f"{prefix}k")
        await raw.aclose()
        await cache.close()


async def test_unreachable_redis_raises_backend_error_naming_the_host_not_the_password() -> None:
    port = _free_port()
    cache = RedisCache(f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    try:
        with pytest.raises(BackendError, match=f"127.0.0.1:{port}") as caught:
            await cache.get("k")
        assert "s3cret-pw" not in str(caught.value)
    finally:
        await cache.close()


async def test_open_cache_chooses_redis_when_a_url_is_set() -> None:
    cache = open_cache(CacheSettings(redis_url=f"redis://127.0.0.1:{_free_port()}/0", default_ttl_s=5))
    try:
        # Redis fails soft: a cache that does not answer is no cache.
        assert isinstance(cache, FailSoftCache) and isinstance(cache.inner, RedisCache)
        assert cache.default_ttl_s == cache.inner.default_ttl_s == 5
    finally:
        await cache.close()


async def test_open_cache_defaults_to_in_process_with_the_settings_limits() -> None:
    cache = open_cache(CacheSettings(max_entries=7, default_ttl_s=5))
    assert isinstance(cache, InProcessCache)
    assert (cache.max_entries, cache.default_ttl_s, cache.prefix) == (7, 5, "lore:")


async def test_a_redis_cache_that_stops_is_no_cache_until_it_answers_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path) as server:
        failures: list[str] = []
        settings = CacheSettings(redis_url=server.url, outage_retry_s=0)
        cache = open_cache(settings, outage=cache_outage(settings, on_error=failures.append))
        try:
            # Given a working Redis cache
            await cache.set("k", b"v")
            assert await cache.get("k") == b"v"
            # when Redis dies, reads miss and writes are dropped, without an error
            server.stop()
            with caplog.at_level(logging.WARNING, logger="lore.outage"):
                assert await cache.get("k") is None
                await cache.set("k", b"w")
                await cache.delete("k")
                assert await cache.get("k") is None
                # and when it is back (empty: no persistence), the cache works again by itself
                server.start()
                assert await cache.get("k") is None
                await cache.set("k", b"x")
                assert await cache.get("k") == b"x"
            assert failures == ["get", "set", "delete", "get"]
            lines = [r.getMessage() for r in caplog.records]
            assert len(lines) == 2 and "unavailable" in lines[0] and "answers again" in lines[1], lines
            assert f"127.0.0.1:{server.port}" in lines[0]
        finally:
            await cache.close()


async def test_while_waiting_to_retry_a_failed_redis_the_cache_is_not_called(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        failures: list[str] = []
        settings = CacheSettings(redis_url=server.url, outage_retry_s=3600)
        cache = open_cache(settings, outage=cache_outage(settings, on_error=failures.append))
        try:
            server.stop()
            assert await cache.get("k") is None
            server.start()
            # Redis answers again, but the hour after the failure is not over: still no cache.
            await cache.set("k", b"v")
            assert await cache.get("k") is None
            assert failures == ["get"]
        finally:
            await cache.close()
