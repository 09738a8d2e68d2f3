"""The real app serving a small ingested corpus, for API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from core.settings import Settings


@asynccontextmanager
async def served_corpus(
    settings: Settings, docs: Path, key: str, *, corpus: str = "handbook"
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """``docs`` ingested into ``corpus``, the app running on ``settings`` (its lifespan included),
    and an httpx client to it sending ``key``: gives (app, client)."""
    from api.app import create_app
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus=corpus)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://lore.test",
            timeout=120,
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield app, client
