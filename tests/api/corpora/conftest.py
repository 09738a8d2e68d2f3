"""The real app with its lifespan (embedded backends), an admin and a reader, and a web site to crawl.

The LLM is an OpenAI-compatible one at a closed port: ingestion never calls it, and so no model
file is loaded for these tests.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fastapi import FastAPI

from api.app import create_app
from core.resources import Resources
from core.settings import LLMSettings, RateLimitSettings, Settings

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "llm": LLMSettings(base_url=f"http://127.0.0.1:{closed_port()}/v1", timeout_s=1),
        "rate_limit": RateLimitSettings(enabled=False),
    }
    return Settings(**(values | overrides))


@dataclass
class Lore:
    """A running app, a client for it, and credentials."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    admin: dict[str, str]
    reader: dict[str, str]

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources

    async def new_corpus(self, name: str) -> str:
        response = await self.client.post("/v1/corpora", json={"name": name}, headers=self.admin)
        assert response.status_code == 201, response.text
        corpus_id: str = response.json()["id"]
        return corpus_id

    async def upload(self, corpus_id: str, files: list[tuple[str, bytes]], **kwargs: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/corpora/{corpus_id}/documents",
            files=[("files", (name, data)) for name, data in files],
            headers=kwargs.pop("headers", self.admin),
            **kwargs,
        )

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/jobs/{job_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = await self.job(job_id)
            if done(job):
                return job
            assert time.monotonic() < deadline, f"job {job_id} is still {job['state']}: {job}"
            await asyncio.sleep(0.05)

    async def finished(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        return await self.wait_until(job_id, lambda job: job["state"] in FINAL_STATES, timeout_s)


@asynccontextmanager
async def running_lore(settings: Settings, user_key: Callable[..., Any]) -> AsyncIterator[Lore]:
    admin = await user_key(settings, "root", role="admin")
    reader = await user_key(settings, "reader", role="reader")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lore.test", timeout=60) as client:
            yield Lore(
                app=app,
                client=client,
                settings=settings,
                admin={"Authorization": f"Bearer {admin}"},
                reader={"Authorization": f"Bearer {reader}"},
            )


@pytest.fixture(scope="module")
async def lore(tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]) -> AsyncIterator[Lore]:
    """One app for the module's tests; each test makes its own corpora."""
    settings = api_settings(tmp_path_factory.mktemp("corpora-api") / "lore")
    async with running_lore(settings, user_key) as running:
        yield running


@pytest.fixture
def slow_embedding(lore: Lore, monkeypatch: pytest.MonkeyPatch) -> float:
    """Every embedding call of ``lore`` takes a little longer: jobs stay running long enough to watch."""
    delay = 0.3
    embedder = lore.resources.embedder
    embed = embedder.embed

    async def slow(texts: Any) -> list[list[float]]:
        await asyncio.sleep(delay)
        return await embed(texts)

    monkeypatch.setattr(embedder, "embed", slow)
    return delay


@dataclass
class Site:
    """Pages by path, served on 127.0.0.1; ``delay`` holds every reply back."""

    pages: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    port: int = 0
    # Paths answered with this status instead (a site down for a while).
    statuses: dict[str, int] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.path in self.statuses:
            return web.Response(status=self.statuses[request.path], text="unavailable")
        page = self.pages.get(request.path)
        if page is None:
            return web.Response(status=404, text="not found")
        return web.Response(text=page, content_type="text/html")


def html(title: str, text: str, *links: str) -> str:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p>"
        f"<ul>{anchors}</ul></main></body></html>"
    )


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site.port = server.port or 0
    try:
        yield site
    finally:
        await server.close()
