"""Readiness, metrics and health on the real app: open to all, and 503 when a dependency fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from core.db import migrate
from core.db.engine import create_engine
from core.settings import Settings

pytestmark = pytest.mark.models


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app on migrated embedded storage, with its lifespan, and a client for it."""
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lore.test") as client:
            yield app, client


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded app: SQLite, Qdrant Edge, llama.cpp in process, in-process rate limits."""
    async with serving(Settings(data_dir=tmp_path_factory.mktemp("ready") / "lore")) as (_, client):
        yield client


async def test_the_embedded_app_is_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "vector_store": "ok", "llm": "ok", "rate_limiter": "ok", "cache": "ok"},
    }


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_ops_routes_need_no_credentials(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"]


async def test_the_real_app_counts_its_requests(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    text = (await client.get("/metrics")).text
    assert 'lore_http_requests_total{method="GET",route="/health",status="200"}' in text


async def test_a_broken_component_makes_the_app_unready(tmp_path: Path, closed_port: int) -> None:
    nowhere: dict[str, Any] = {
        "llm": {"base_url": f"http://127.0.0.1:{closed_port}/v1"},
        "cache": {"redis_url": f"redis://127.0.0.1:{closed_port}/0"},
    }
    async with serving(Settings(data_dir=tmp_path / "lore", **nowhere)) as (app, client):
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {
                "database": "ok",
                "vector_store": "ok",
                "llm": "failed",
                "rate_limiter": "failed",
                "cache": "failed",
            },
        }
        # A closed store fails its check as well.
        await app.state.resources.store.close()
        checks = (await client.get("/ready")).json()["checks"]
        assert checks["vector_store"] == "failed"


async def test_without_the_cache_redis_the_app_is_degraded_not_unavailable(
    tmp_path: Path, closed_port: int
) -> None:
    # Lore answers without the cache, and rate limits fall back to local buckets: still in rotation.
    nowhere = {"cache": {"redis_url": f"redis://127.0.0.1:{closed_port}/0"}}
    async with serving(Settings(data_dir=tmp_path / "lore", **nowhere)) as (_, client):
        response = await client.get("/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["cache"] == body["checks"]["rate_limiter"] == "failed"


async def test_limits_that_fail_closed_make_a_missing_redis_unavailable(
    tmp_path: Path, closed_port: int
) -> None:
    nowhere: dict[str, Any] = {
        "cache": {"redis_url": f"redis://127.0.0.1:{closed_port}/0"},
        "rate_limit": {"on_backend_error": "closed"},
    }
    async with serving(Settings(data_dir=tmp_path / "lore", **nowhere)) as (_, client):
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
