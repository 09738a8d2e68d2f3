"""Both semantic index backends pass the same behaviour tests: in process, and a real Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from core.components.cache import cache_outage
from core.components.semantic_cache import (
    FailSoftSemanticIndex,
    InProcessSemanticIndex,
    RedisSemanticIndex,
    SemanticIndex,
    best_matches,
    open_semantic_index,
)
from core.settings import CacheSettings
from tests.restartable import redis_server

IndexFactory = Callable[..., SemanticIndex]
NORTH, EAST = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
NEAR_NORTH = [0.95, 0.31, 0.0]  # cosine 0.95 with NORTH


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def make_index(request: pytest.FixtureRequest) -> AsyncIterator[IndexFactory]:
    """Builds indexes of one backend; ``shared=True`` reuses the previous index's prefix (Redis)."""
    url: str | None = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[SemanticIndex] = []
    prefixes: list[str] = []

    def factory(*, max_per_scope: int = 100, ttl_s: float = 60.0, shared: bool = False) -> SemanticIndex:
        prefix = prefixes[-1] if shared and prefixes else f"lore-test:{uuid.uuid4().hex}:"
        prefixes.append(prefix)
        index: SemanticIndex
        if url is None:
            index = InProcessSemanticIndex(max_entries=1000, max_per_scope=max_per_scope, ttl_s=ttl_s)
        else:
            index = RedisSemanticIndex(url, max_per_scope=max_per_scope, ttl_s=ttl_s, prefix=prefix)
        made.append(index)
        return index

    try:
        yield factory
    finally:
        for index in made:
            await index.close()
        if url is not None:
            raw = Redis.from_url(url)
            try:
                for prefix in set(prefixes):
                    async for name in raw.scan_iter(match=f"{prefix}*"):
                        await raw.delete(name)
            finally:
                await raw.aclose()


def test_best_matches_keeps_those_over_the_threshold_best_first() -> None:
    entries = [("east", np.array(EAST, np.float32)), ("near", np.array(NEAR_NORTH, np.float32))]
    entries.append(("north", np.array(NORTH, np.float32)))
    matches = best_matches(NORTH, entries, threshold=0.9)
    assert [m.key for m in matches] == ["north", "near"]
    assert matches[0].similarity == pytest.approx(1.0)
    assert matches[1].similarity == pytest.approx(0.95, abs=0.01)
    assert best_matches(NORTH, [], threshold=0.0) == []


async def test_nearest_finds_a_close_question_and_not_a_far_one(make_index: IndexFactory) -> None:
    index = make_index()
    await index.add("scope", NORTH, "answer:north")
    (match,) = await index.nearest("scope", NEAR_NORTH, threshold=0.9)
    assert match.key == "answer:north" and match.similarity == pytest.approx(0.95, abs=0.01)
    assert await index.nearest("scope", EAST, threshold=0.9) == []
    assert await index.nearest("scope", NEAR_NORTH, threshold=0.96) == []


async def test_a_scope_never_sees_another_scopes_entries(make_index: IndexFactory) -> None:
    index = make_index()
    await index.add("scope-a", NORTH, "answer:a")
    assert await index.nearest("scope-b", NORTH, threshold=0.0) == []
    assert [m.key for m in await index.nearest("scope-a", NORTH, threshold=0.0)] == ["answer:a"]


async def test_entries_expire_after_their_ttl(make_index: IndexFactory) -> None:
    index = make_index(ttl_s=0.2)
    await index.add("scope", NORTH, "answer:north")
    assert await index.nearest("scope", NORTH, threshold=0.9)
    await asyncio.sleep(0.35)
    assert await index.nearest("scope", NORTH, threshold=0.9) == []


async def test_each_scope_keeps_only_its_newest_entries(make_index: IndexFactory) -> None:
    index = make_index(max_per_scope=2)
    for n in range(3):
        await index.add("scope", NORTH, f"answer:{n}")
    keys = {m.key for m in await index.nearest("scope", NORTH, threshold=0.9)}
    assert keys == {"answer:1", "answer:2"}


def test_the_in_process_index_is_bounded_across_scopes() -> None:
    index = InProcessSemanticIndex(max_entries=2, max_per_scope=10, ttl_s=60)

    async def run() -> list[bool]:
        for scope in ("a", "b", "c"):
            await index.add(scope, NORTH, f"answer:{scope}")
        return [bool(await index.nearest(s, NORTH, threshold=0.9)) for s in ("a", "b", "c")]

    assert asyncio.run(run()) == [False, True, True]


@pytest.mark.redis
async def test_redis_entries_are_shared_between_indexes(redis_url: str) -> None:
    prefix = f"lore-test:{uuid.uuid4().hex}:"
    first = RedisSemanticIndex(redis_url, max_per_scope=100, ttl_s=60.0, prefix=prefix)
    second = RedisSemanticIndex(redis_url, max_per_scope=100, ttl_s=60.0, prefix=prefix)
    try:
        await first.add("scope", NORTH, "answer:north")
        assert [m.key for m in await second.nearest("scope", NEAR_NORTH, threshold=0.9)] == ["answer:north"]
    finally:
        await first.close()
        await second.close()
        raw = Redis.from_url(redis_url)
        try:
            async for name in raw.scan_iter(match=f"{prefix}*"):
                await raw.delete(name)
        finally:
            await raw.aclose()


def test_settings_choose_the_backend_or_none() -> None:
    assert open_semantic_index(CacheSettings(semantic=False)) is None
    assert isinstance(open_semantic_index(CacheSettings()), InProcessSemanticIndex)
    shared = open_semantic_index(CacheSettings(redis_url="redis://127.0.0.1:6379/15"))
    # Redis fails soft: a semantic index that does not answer finds nothing.
    assert isinstance(shared, FailSoftSemanticIndex) and isinstance(shared.inner, RedisSemanticIndex)


async def test_a_redis_index_that_stops_finds_nothing_until_it_answers_again(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        failures: list[str] = []
        settings = CacheSettings(redis_url=server.url, outage_retry_s=0)
        index = open_semantic_index(settings, outage=cache_outage(settings, on_error=failures.append))
        assert index is not None
        try:
            await index.add("scope", [1.0, 0.0], "answer-1")
            assert [m.key for m in await index.nearest("scope", [1.0, 0.0], threshold=0.9)] == ["answer-1"]
            server.stop()
            assert await index.nearest("scope", [1.0, 0.0], threshold=0.9) == []
            await index.add("scope", [1.0, 0.0], "answer-2")
            server.start()
            await index.add("scope", [0.0, 1.0], "answer-3")
            assert [m.key for m in await index.nearest("scope", [0.0, 1.0], threshold=0.9)] == ["answer-3"]
            assert failures == ["semantic_nearest", "semantic_add"]
        finally:
            await index.close()
