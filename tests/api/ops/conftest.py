"""A small app with the ops pieces and a few routes, so these tests need no models or database."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from api.auth.dependencies import get_principal
from api.auth.principal import Principal
from api.errors import install_error_handlers
from api.ops.install import closing_ops, install_ops
from api.ops.logs import JsonFormatter
from api.ops.ratelimit import AdminRateLimit, QueryRateLimit
from core.settings import Settings

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


class Question(BaseModel):
    question: str


def principal_from_headers(request: Request) -> Principal:
    """Stands in for authentication: the caller is whoever ``X-Test-User`` names."""
    user = request.headers.get("x-test-user", "alice")
    return Principal(user_id=user, username=user, role="admin", via="token", credential_id=f"s-{user}")


def build_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_ops(app, settings)
    app.dependency_overrides[get_principal] = principal_from_headers

    @app.post("/ask", dependencies=[QueryRateLimit])
    async def ask(body: Question) -> dict[str, str]:
        logging.getLogger("lore.test").info("answering %s", body.question)
        return {"answer": body.question.upper()}

    @app.post("/admin/thing", dependencies=[AdminRateLimit])
    async def admin_thing() -> dict[str, bool]:
        return {"done": True}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/v1/corpora/{corpus}/documents")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return app


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., FastAPI]:
    """Builds small apps; settings overrides as keyword arguments."""

    def factory(**overrides: Any) -> FastAPI:
        return build_app(Settings(data_dir=tmp_path / "lore", **overrides))

    return factory


@pytest.fixture
async def make_client(make_app: Callable[..., FastAPI]) -> AsyncIterator[ClientFactory]:
    """Builds small apps (settings overrides as keyword arguments) and clients for them."""
    async with AsyncExitStack() as stack:

        async def factory(**overrides: Any) -> httpx.AsyncClient:
            app = make_app(**overrides)
            await stack.enter_async_context(closing_ops(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://lore.test")
            )

        yield factory


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JsonLines(logging.Handler):
    """Keeps each record as the JSON line :class:`JsonFormatter` makes of it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    """The JSON lines the ``lore`` loggers write during the test."""
    handler = JsonLines()
    logger = logging.getLogger("lore")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)
