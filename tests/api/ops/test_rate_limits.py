"""Rate limits through HTTP: headers on every limited reply, 429 past the burst, one bucket per caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from api.auth.principal import Principal
from api.ops.ratelimit import check_websocket_message
from core.errors import RateLimitedError

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]

QUERY_LIMIT = {"query_burst": 3, "query_per_minute": 1.0}


@pytest.fixture
async def caller(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A caller no other test uses (buckets outlive tests in a shared Redis); its keys go after."""
    user = f"test-{uuid.uuid4().hex}"
    yield user
    if "redis_url" in request.fixturenames:
        raw = Redis.from_url(request.getfixturevalue("redis_url"))
        async for name in raw.scan_iter(match=f"lore:rl:*:user:{user}"):
            await raw.delete(name)
        await raw.aclose()


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """The cache settings of one rate limiter backend."""
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {"redis_url": None}


async def ask(client: httpx.AsyncClient, user: str) -> httpx.Response:
    return await client.post("/ask", json={"question": "why?"}, headers={"X-Test-User": user})


async def test_past_the_burst_requests_get_429_with_retry_after(
    make_client: ClientFactory, backend: dict[str, str | None], caller: str
) -> None:
    client = await make_client(cache=backend, rate_limit=QUERY_LIMIT)
    allowed = [await ask(client, caller) for _ in range(3)]
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert {r.headers["RateLimit-Limit"] for r in allowed} == {"3"}
    # Three tokens spent at one a minute: full again in three minutes.
    assert 170 <= int(allowed[-1].headers["RateLimit-Reset"]) <= 180

    refused = await ask(client, caller)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"


@pytest.mark.redis
async def test_two_apps_on_one_redis_share_the_callers_bucket(
    make_client: ClientFactory, redis_url: str, caller: str
) -> None:
    first = await make_client(cache={"redis_url": redis_url}, rate_limit=QUERY_LIMIT)
    second = await make_client(cache={"redis_url": redis_url}, rate_limit=QUERY_LIMIT)
    statuses = [(await ask(app, caller)).status_code for app in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]


async def test_callers_and_route_classes_have_separate_buckets(make_client: ClientFactory) -> None:
    client = await make_client(rate_limit={**QUERY_LIMIT, "admin_burst": 1})
    for _ in range(3):
        await ask(client, "alice")
    assert (await ask(client, "alice")).status_code == 429
    assert (await ask(client, "bob")).status_code == 200
    admin = await client.post("/admin/thing", headers={"X-Test-User": "alice"})
    assert admin.status_code == 200 and admin.headers["RateLimit-Limit"] == "1"


async def test_disabled_limits_let_every_request_through(make_client: ClientFactory) -> None:
    client = await make_client(rate_limit={**QUERY_LIMIT, "enabled": False})
    responses = [await ask(client, "alice") for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[-1].headers


async def test_refusals_are_counted_by_route_class(make_client: ClientFactory) -> None:
    client = await make_client(rate_limit={**QUERY_LIMIT, "query_burst": 1})
    await ask(client, "alice")
    await ask(client, "alice")
    await ask(client, "alice")
    metrics = (await client.get("/metrics")).text
    assert 'lore_rate_limit_rejections_total{route_class="query"} 2.0' in metrics


async def test_an_unreachable_redis_falls_back_to_local_buckets_by_default(
    make_client: ClientFactory, closed_port: int
) -> None:
    client = await make_client(
        cache={"redis_url": f"redis://127.0.0.1:{closed_port}/0"}, rate_limit=QUERY_LIMIT
    )
    statuses = [(await ask(client, "alice")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    metrics = (await client.get("/metrics")).text
    # One failure: for cache.outage_retry_s after it, hits go straight to the local buckets.
    assert "lore_rate_limit_backend_errors_total 1.0" in metrics


async def test_an_unreachable_redis_lets_requests_through_when_limits_fail_open(
    make_client: ClientFactory, closed_port: int
) -> None:
    client = await make_client(
        cache={"redis_url": f"redis://127.0.0.1:{closed_port}/0"},
        rate_limit={**QUERY_LIMIT, "on_backend_error": "open"},
    )
    statuses = [(await ask(client, "alice")).status_code for _ in range(5)]
    assert statuses == [200] * 5


async def test_an_unreachable_redis_answers_503_without_its_address_when_limits_fail_closed(
    make_client: ClientFactory, closed_port: int
) -> None:
    client = await make_client(
        cache={"redis_url": f"redis://127.0.0.1:{closed_port}/0"},
        rate_limit={**QUERY_LIMIT, "on_backend_error": "closed"},
    )
    response = await ask(client, "alice")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert str(closed_port) not in response.text and "127.0.0.1" not in response.text


async def test_websocket_messages_past_the_burst_are_refused(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(rate_limit={"websocket_burst": 2, "websocket_messages_per_minute": 6.0})
    connection = HTTPConnection({"type": "websocket", "app": app, "headers": []})
    alice = Principal(user_id="alice", username="alice", role="reader", via="token", credential_id="s1")
    await check_websocket_message(connection, alice)
    await check_websocket_message(connection, alice)
    with pytest.raises(RateLimitedError) as refused:
        await check_websocket_message(connection, alice)
    assert 9 < refused.value.retry_after_s <= 10 and refused.value.limit == 2
    assert (
        'lore_rate_limit_rejections_total{route_class="websocket"} 1.0' in app.state.metrics.render().decode()
    )
