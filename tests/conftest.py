"""Shared fixtures: settings on a temporary data dir, the real models, real service URLs."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from core.components.embedding import Embedder
from core.settings import EmbeddingSettings, Settings

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Embedded-mode settings on ``data_dir``; nested sections may be given as dicts."""
    return Settings(data_dir=data_dir, **overrides)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(tmp_path / "lore", **overrides)

    return factory


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    """Embedded resources (real embedder, Qdrant Edge, SQLite, llama.cpp) on a fresh data dir."""
    from core.resources import open_resources

    async with open_resources(make_settings(tmp_path / "lore"), migrate_sqlite=True) as res:
        yield res


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(EmbeddingSettings())


def _service_url(name: str, what: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.skip(f"{name} is not set: these tests need a real {what} server (.ci/run sets it)")
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        socket.create_connection((parts.hostname, parts.port or 0), timeout=3).close()
    except OSError as exc:
        message = f"{what} at {parts.hostname}:{parts.port} is unreachable: {exc}"
        if os.environ.get("LORE_TEST_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url() -> str:
    return _service_url("LORE_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    return _service_url("LORE_TEST_REDIS_URL", "Redis")
