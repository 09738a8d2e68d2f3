"""Request IDs round trip and appear in every JSON log line the request writes."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from api.ops.logs import JsonFormatter, configure_logging
from api.ops.request_id import request_id_for

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_a_request_without_an_id_gets_a_fresh_one(make_client: ClientFactory) -> None:
    client = await make_client()
    first = (await client.get("/items/1")).headers["X-Request-ID"]
    second = (await client.get("/items/1")).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


async def test_a_sane_incoming_id_is_kept(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/items/1", headers={"X-Request-ID": "edge-proxy:4f2a.9"})
    assert response.headers["X-Request-ID"] == "edge-proxy:4f2a.9"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "-leading-dash", "tab\there", "é"])
def test_an_insane_incoming_id_is_replaced(incoming: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_for(incoming))


async def test_errors_carry_the_request_id_too(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/nowhere", headers={"X-Request-ID": "abc123"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "abc123"


async def test_the_access_line_and_the_routes_own_lines_name_the_request(
    make_client: ClientFactory, json_lines: logging.Handler
) -> None:
    client = await make_client()
    response = await client.post("/ask", json={"question": "why?"}, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200

    lines = [json.loads(line) for line in json_lines.lines]  # type: ignore[attr-defined]
    route_line = next(line for line in lines if line["logger"] == "lore.test")
    access_line = next(line for line in lines if line["logger"] == "lore.access")
    assert route_line["request_id"] == access_line["request_id"] == "req-42"
    assert route_line["message"] == "answering why?" and route_line["level"] == "INFO"
    assert access_line["method"] == "POST" and access_line["path"] == "/ask"
    assert access_line["route"] == "/ask" and access_line["status"] == 200
    assert access_line["duration_ms"] >= 0
    assert {"ts", "level", "logger", "message", "request_id"} <= set(access_line)


def test_a_log_line_is_one_json_object_with_the_exception() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("lore.test").makeRecord(
            "lore.test", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info(), extra={"n": 3}
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed here" and entry["level"] == "ERROR" and entry["n"] == 3
    assert entry["request_id"] is None
    assert "ValueError: bad value" in entry["exception"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Puts the root and uvicorn loggers back as they were after the test configures logging."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (lg.handlers[:], lg.level, lg.propagate) for n in names if (lg := logging.getLogger(n))}
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_configure_logging_sends_uvicorn_through_the_json_handler(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO")
    logging.getLogger("uvicorn.error").info("Started server process", extra={"color_message": "\x1b[36m"})
    logging.getLogger("uvicorn.access").info("127.0.0.1 - GET / 200")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "Started server process")
    ]
    assert "color_message" not in lines[0]
