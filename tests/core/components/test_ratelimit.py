"""Token buckets: both backends pass the same behaviour tests; Redis also shares and is atomic."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.components.ratelimit import (
    FallbackRateLimiter,
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    open_rate_limiter,
)
from core.errors import BackendError, UnavailableError
from core.settings import Settings
from tests.restartable import redis_server

LimiterFactory = Callable[[], RateLimiter]
# A refill so slow that no token comes back while a test runs: one token per 1000 s.
SLOW = 0.001


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[LimiterFactory]:
    """Builds limiters of one backend on one random prefix; Redis keys are removed after."""
    url: str | None = request.getfixturevalue("redis_url") if request.param == "redis" else None
    prefix = f"lore-test:rl:{uuid.uuid4().hex}:"
    made: list[RateLimiter] = []

    def factory() -> RateLimiter:
        limiter = InProcessRateLimiter(prefix=prefix) if url is None else RedisRateLimiter(url, prefix=prefix)
        made.append(limiter)
        return limiter

    try:
        yield factory
    finally:
        for limiter in made:
            await limiter.close()
        if url is not None:
            await _delete_keys(url, prefix)


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A random key prefix whose keys are removed after the test."""
    prefix = f"lore-test:rl:{uuid.uuid4().hex}:"
    yield prefix
    await _delete_keys(redis_url, prefix)


async def _delete_keys(url: str, prefix: str) -> None:
    raw = Redis.from_url(url)
    try:
        async for name in raw.scan_iter(match=f"{prefix}*"):
            await raw.delete(name)
    finally:
        await raw.aclose()


async def test_a_new_bucket_allows_capacity_hits_then_refuses(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    decisions = [await limiter.hit("caller", capacity=3, refill_per_s=SLOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert {d.limit for d in decisions} == {3}
    assert [d.retry_after_s for d in decisions[:3]] == [0.0, 0.0, 0.0]
    # One token comes back every 1000 s; a little of that has passed since the bucket was drained.
    assert 990 < decisions[3].retry_after_s <= 1000


async def test_reset_after_is_the_time_until_the_bucket_is_full(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    first = await limiter.hit("caller", capacity=4, refill_per_s=2.0)
    second = await limiter.hit("caller", capacity=4, refill_per_s=2.0)
    assert first.reset_after_s == pytest.approx(0.5, abs=0.05)
    assert second.reset_after_s == pytest.approx(1.0, abs=0.05)


async def test_refused_hits_spend_nothing(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    assert (await limiter.hit("caller", capacity=1, refill_per_s=SLOW)).allowed
    refusals = [await limiter.hit("caller", capacity=1, refill_per_s=SLOW) for _ in range(3)]
    assert not any(d.allowed for d in refusals)
    # Were refusals spending, each would push the wait another 1000 s out.
    assert all(990 < d.retry_after_s <= 1000 for d in refusals)


async def test_tokens_come_back_at_the_refill_rate(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    for _ in range(2):
        assert (await limiter.hit("caller", capacity=2, refill_per_s=20.0)).allowed
    refused = await limiter.hit("caller", capacity=2, refill_per_s=20.0)
    assert not refused.allowed and 0 < refused.retry_after_s <= 0.05
    await asyncio.sleep(refused.retry_after_s + 0.02)
    assert (await limiter.hit("caller", capacity=2, refill_per_s=20.0)).allowed


async def test_a_hit_may_cost_several_tokens(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    spent = await limiter.hit("caller", capacity=5, refill_per_s=SLOW, cost=3)
    assert spent.allowed and spent.remaining == 2
    refused = await limiter.hit("caller", capacity=5, refill_per_s=SLOW, cost=3)
    assert not refused.allowed and refused.remaining == 2
    assert 990 < refused.retry_after_s <= 1000


async def test_each_key_has_its_own_bucket(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    assert (await limiter.hit("alice", capacity=1, refill_per_s=SLOW)).allowed
    assert not (await limiter.hit("alice", capacity=1, refill_per_s=SLOW)).allowed
    assert (await limiter.hit("bob", capacity=1, refill_per_s=SLOW)).allowed


async def test_concurrent_hits_never_overspend(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    decisions = await asyncio.gather(
        *(limiter.hit("caller", capacity=20, refill_per_s=SLOW) for _ in range(50))
    )
    assert sum(d.allowed for d in decisions) == 20


@pytest.mark.parametrize(
    ("capacity", "refill_per_s", "cost"),
    [(0, 1.0, 1.0), (5, 0.0, 1.0), (5, -1.0, 1.0), (5, 1.0, 0.0), (5, 1.0, 6.0)],
)
async def test_impossible_policies_are_refused(
    make_limiter: LimiterFactory, capacity: int, refill_per_s: float, cost: float
) -> None:
    with pytest.raises(ValueError):
        await make_limiter().hit("caller", capacity=capacity, refill_per_s=refill_per_s, cost=cost)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_in_process_refill_is_exact_by_the_clock() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(clock=clock)
    for _ in range(10):
        await limiter.hit("caller", capacity=10, refill_per_s=2.0)
    refused = await limiter.hit("caller", capacity=10, refill_per_s=2.0)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(0.5)
    assert refused.reset_after_s == pytest.approx(5.0)
    clock.now += 1.25  # 2.5 tokens back
    allowed = await limiter.hit("caller", capacity=10, refill_per_s=2.0)
    assert allowed.allowed and allowed.remaining == 1
    clock.now += 60  # long past full: the bucket holds its capacity, not more
    assert (await limiter.hit("caller", capacity=10, refill_per_s=2.0)).remaining == 9


async def test_in_process_forgets_full_buckets() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(clock=clock)
    await limiter.hit("early", capacity=2, refill_per_s=1.0)
    await limiter.hit("late", capacity=2, refill_per_s=1.0)
    assert len(limiter) == 2
    clock.now += 1.5  # both full again
    await limiter.hit("late", capacity=2, refill_per_s=1.0)
    assert len(limiter) == 1


async def test_in_process_holds_at_most_max_buckets() -> None:
    limiter = InProcessRateLimiter(max_buckets=3, clock=FakeClock())
    for name in ("a", "b", "c", "d"):
        await limiter.hit(name, capacity=1, refill_per_s=SLOW)
    assert len(limiter) == 3
    # "a" was hit least recently, so it went: it starts again with a full bucket.
    assert (await limiter.hit("a", capacity=1, refill_per_s=SLOW)).allowed
    assert not (await limiter.hit("d", capacity=1, refill_per_s=SLOW)).allowed


@pytest.mark.redis
async def test_redis_limiters_in_two_processes_share_one_bucket(redis_url: str, redis_prefix: str) -> None:
    first, second = (
        RedisRateLimiter(redis_url, prefix=redis_prefix),
        RedisRateLimiter(redis_url, prefix=redis_prefix),
    )
    try:
        assert (await first.hit("caller", capacity=2, refill_per_s=SLOW)).allowed
        assert (await second.hit("caller", capacity=2, refill_per_s=SLOW)).allowed
        assert not (await first.hit("caller", capacity=2, refill_per_s=SLOW)).allowed
    finally:
        await first.close()
        await second.close()


@pytest.mark.redis
async def test_redis_script_is_atomic_across_clients(redis_url: str, redis_prefix: str) -> None:
    limiters = [RedisRateLimiter(redis_url, prefix=redis_prefix) for _ in range(2)]
    try:
        decisions = await asyncio.gather(
            *(limiters[i % 2].hit("caller", capacity=20, refill_per_s=SLOW) for i in range(50))
        )
    finally:
        for limiter in limiters:
            await limiter.close()
    assert sum(d.allowed for d in decisions) == 20
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(20))


@pytest.mark.redis
async def test_redis_buckets_expire_once_they_would_be_full(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)
    raw = Redis.from_url(redis_url)
    try:
        await limiter.hit("caller", capacity=5, refill_per_s=2.0, cost=3)
        # 3 tokens at 2 a second: full again in 1.5 s, when the key may as well be gone.
        assert 1400 < await raw.pttl(f"{redis_prefix}caller") <= 1500
    finally:
        await limiter.close()
        await raw.aclose()


@pytest.mark.redis
async def test_redis_reloads_the_script_after_the_server_forgets_it(
    redis_url: str, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)
    raw = Redis.from_url(redis_url)
    try:
        assert (await limiter.hit("caller", capacity=2, refill_per_s=SLOW)).allowed
        await raw.script_flush()
        decision = await limiter.hit("caller", capacity=2, refill_per_s=SLOW)
        assert decision.allowed and decision.remaining == 0
    finally:
        await limiter.close()
        await raw.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_raises_backend_error() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{_closed_port()}/0", timeout_s=1.0)
    try:
        with pytest.raises(BackendError, match="rate-limit script"):
            await limiter.hit("caller", capacity=1, refill_per_s=1.0)
        with pytest.raises(BackendError):
            await limiter.ping()
    finally:
        await limiter.close()


async def test_open_rate_limiter_picks_redis_only_when_a_url_is_set() -> None:
    in_process = open_rate_limiter(Settings(cache={"redis_url": None}))
    redis = open_rate_limiter(Settings(cache={"redis_url": "redis://127.0.0.1:1/0"}))
    try:
        assert isinstance(in_process, InProcessRateLimiter)
        assert isinstance(redis, FallbackRateLimiter) and isinstance(redis.primary, RedisRateLimiter)
        assert redis.primary.where == "127.0.0.1:1"
    finally:
        await in_process.close()
        await redis.close()


async def test_while_redis_is_down_hits_fall_back_as_each_asks(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        failures: list[str] = []
        limiter = open_rate_limiter(
            Settings(cache={"redis_url": server.url, "outage_retry_s": 0}), on_error=failures.append
        )
        policy = {"capacity": 2, "refill_per_s": SLOW}
        try:
            assert (await limiter.hit("shared", **policy)).remaining == 1
            server.stop()
            # local: buckets in this process, full at the outage's start
            local = [
                (await limiter.hit("caller", **policy, on_backend_error="local")).allowed for _ in range(3)
            ]
            assert local == [True, True, False]
            # open: every hit allowed
            opened = [
                (await limiter.hit("caller", **policy, on_backend_error="open")).allowed for _ in range(3)
            ]
            assert opened == [True, True, True]
            # closed: refused as unavailable, with a retry hint and no address
            with pytest.raises(UnavailableError) as refused:
                await limiter.hit("caller", **policy, on_backend_error="closed")
            assert refused.value.retry_after_s >= 1 and "127.0.0.1" not in refused.value.message
            assert failures == ["hit"] * 7
            # Redis back (empty): its buckets count again
            server.start()
            assert (await limiter.hit("shared", **policy)).remaining == 1
        finally:
            await limiter.close()
