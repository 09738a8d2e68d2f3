"""CORS headers for the configured origins only, on errors as well as successes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
APP_ORIGIN = "https://app.example.org"


async def test_a_configured_origin_may_call_and_read_the_ops_headers(make_client: ClientFactory) -> None:
    client = await make_client(server={"cors_origins": [APP_ORIGIN]})
    preflight = await client.options(
        "/ask",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN

    response = await client.post("/ask", json={"question": "q"}, headers={"Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after", "ratelimit-remaining"} <= exposed


async def test_errors_carry_cors_headers_so_browsers_can_read_them(make_client: ClientFactory) -> None:
    client = await make_client(server={"cors_origins": [APP_ORIGIN], "max_body_bytes": 10})
    response = await client.post("/echo", content=b"x" * 11, headers={"Origin": APP_ORIGIN})
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_other_origins_get_no_cors_headers(make_client: ClientFactory) -> None:
    client = await make_client(server={"cors_origins": [APP_ORIGIN]})
    response = await client.get("/items/1", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_no_origins_configured_means_no_cors_headers(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/items/1", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)
