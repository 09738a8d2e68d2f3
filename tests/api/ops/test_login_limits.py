"""Login limits: a password login spends from its client address's bucket and its username's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from fastapi.security import OAuth2PasswordRequestForm

from api.ops.ratelimit import LoginRateLimit, PasswordLoginRateLimit

LOGIN_LIMIT = {"login_burst": 3, "login_per_minute": 1.0}


def with_login_routes(app: FastAPI) -> FastAPI:
    @app.post("/login", dependencies=[PasswordLoginRateLimit])
    async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        return {"user": form.username}

    @app.post("/refresh", dependencies=[LoginRateLimit])
    async def refresh() -> dict[str, bool]:
        return {"refreshed": True}

    return app


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client whose requests reach the app from ``address`` (the ASGI scope's client)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://lore.test")


async def login(app: FastAPI, address: str, username: str) -> int:
    async with client_from(app, address) as client:
        response = await client.post("/login", data={"username": username, "password": "guess"})
        return response.status_code


async def test_one_username_from_many_addresses_is_limited(make_app: Callable[..., FastAPI]) -> None:
    app = with_login_routes(make_app(rate_limit=LOGIN_LIMIT))
    statuses = [await login(app, f"10.0.0.{n}", "alice") for n in range(1, 6)]
    assert statuses == [200, 200, 200, 429, 429]
    # another username is its own bucket
    assert await login(app, "10.0.0.9", "bob") == 200


async def test_many_usernames_from_one_address_are_limited(make_app: Callable[..., FastAPI]) -> None:
    app = with_login_routes(make_app(rate_limit=LOGIN_LIMIT))
    statuses = [await login(app, "10.0.0.1", f"user-{n}") for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert await login(app, "10.0.0.2", "user-9") == 200


async def test_a_refused_login_says_when_to_retry(make_app: Callable[..., FastAPI]) -> None:
    app = with_login_routes(make_app(rate_limit={"login_burst": 1, "login_per_minute": 1.0}))
    assert await login(app, "10.0.0.1", "alice") == 200
    async with client_from(app, "10.0.0.2") as client:
        refused = await client.post("/login", data={"username": "alice", "password": "guess"})
    assert refused.status_code == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60


async def test_refresh_is_limited_by_address_and_shares_its_bucket_with_logins(
    make_app: Callable[..., FastAPI],
) -> None:
    app = with_login_routes(make_app(rate_limit=LOGIN_LIMIT))
    assert await login(app, "10.0.0.1", "alice") == 200
    async with client_from(app, "10.0.0.1") as client:
        statuses = [(await client.post("/refresh")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_an_unreachable_redis_refuses_logins_when_login_limits_fail_closed(
    make_app: Callable[..., FastAPI], closed_port: int
) -> None:
    app = with_login_routes(
        make_app(
            cache={"redis_url": f"redis://127.0.0.1:{closed_port}/0"},
            rate_limit={**LOGIN_LIMIT, "login_on_backend_error": "closed", "on_backend_error": "open"},
        )
    )
    async with client_from(app, "10.0.0.1") as client:
        response = await client.post("/login", data={"username": "alice", "password": "guess"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert str(closed_port) not in response.text and "127.0.0.1" not in response.text
