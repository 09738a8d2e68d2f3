"""The one error shape: a 5xx never names an internal host, and a database that does not answer is a 503."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, ProgrammingError

from api.errors import client_message, install_error_handlers, scrub_addresses
from core.errors import BackendError, InvalidInputError


@pytest.mark.parametrize(
    "message",
    [
        "Redis at redis.internal:6379 failed on GET: Error 111 connecting to redis.internal:6379.",
        "Redis at 10.1.2.3:6380 failed: Connect call failed ('10.1.2.3', 6380).",
        "cannot reach the database (LORE_DATABASE__URL=postgresql+asyncpg://lore:***@db.corp/lore): refused",
        "the endpoint http://llm.internal/v1 answered 502",
        "Qdrant at [fd00::12]:6333 timed out",
        "host 192.168.0.7 unreachable",
    ],
)
def test_addresses_are_scrubbed_from_a_message(message: str) -> None:
    scrubbed = scrub_addresses(message)
    for secret in ("redis.internal", "10.1.2.3", "db.corp", "llm.internal", "fd00::12", "192.168.0.7"):
        assert secret not in scrubbed
    assert "6379" not in scrubbed and "6380" not in scrubbed and "6333" not in scrubbed
    assert "<internal>" in scrubbed


def test_scrubbing_leaves_ordinary_text_alone() -> None:
    message = "the LLM is busy: 8 requests already wait for it; retry in 5 s (LORE_LLM__MAX_QUEUE)"
    assert scrub_addresses(message) == message


def app_raising(exc: Exception) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    # A crash re-raises out of the app after its 500 is sent; the client reads the 500.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://lore.test")


async def test_a_backend_error_reaches_the_client_without_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = BackendError("Redis at redis.internal:6379 failed on GET: Error 111")
    with caplog.at_level(logging.ERROR, logger="lore.api"):
        async with app_raising(error) as client:
            response = await client.get("/boom")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "backend_unavailable",
        "message": "Redis at <internal> failed on GET: Error 111",
    }
    # the server log keeps the whole message
    assert any("redis.internal:6379" in r.getMessage() for r in caplog.records)


async def test_a_client_error_keeps_its_message() -> None:
    async with app_raising(InvalidInputError("fetch https://example.com/a failed: 404")) as client:
        response = await client.get("/boom")
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "fetch https://example.com/a failed: 404"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0)"),
        DBAPIError("SELECT 1", None, Exception("connection was closed"), connection_invalidated=True),
    ],
    ids=["refused", "refused-every-address", "connection-lost"],
)
async def test_a_database_that_does_not_answer_is_a_503_with_retry_after(error: Exception) -> None:
    async with app_raising(error) as client:
        response = await client.get("/boom")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()["error"]
    assert body["code"] == "backend_unavailable" and "does not answer right now" in body["message"]
    assert "10.0.0.5" not in response.text and "5432" not in response.text


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError(2, "No such file"), ProgrammingError("SELECT nope", None, Exception("syntax error"))],
    ids=["a-missing-file", "a-wrong-statement"],
)
async def test_other_os_and_database_errors_are_still_crashes(error: Exception) -> None:
    async with app_raising(error) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_a_client_reads_a_5xx_scrubbed_and_a_4xx_whole() -> None:
    assert client_message(BackendError("Redis at redis:6379 failed")) == "Redis at <internal> failed"
    assert client_message(InvalidInputError("no such host: a.example:80")) == "no such host: a.example:80"
