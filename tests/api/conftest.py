"""The real app on each database (SQLite, and a fresh PostgreSQL database), for API tests whose
outcome depends on what the database accepts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core.settings import DatabaseSettings, LLMSettings, RateLimitSettings, Settings
from tests.conftest import new_postgres_database
from tests.served import served_corpus

# A corpus named before corpus names had a rule: it must stay readable by its name.
LEGACY_CORPUS = "Legacy Docs/2019"


@dataclass
class DatabaseWorld:
    """The app on one database: corpus `handbook` ingested, `secrets` and the legacy corpus
    empty; `root` (admin) and `alice` (reader granted `handbook` only)."""

    database: str
    app: FastAPI
    client: httpx.AsyncClient
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def _add_corpora(settings: Settings, *names: str) -> None:
    from core.db.engine import create_engine, session_factory
    from core.db.models import CorpusRow

    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            session.add_all(CorpusRow(id=str(uuid.uuid4()), name=name) for name in names)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def on_each_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[DatabaseWorld]:
    """The app on SQLite, then on PostgreSQL (see :class:`DatabaseWorld`)."""
    root = tmp_path_factory.mktemp(f"on-{request.param}")
    async with AsyncExitStack() as stack:
        database = DatabaseSettings()
        if request.param == "postgres":
            url = await stack.enter_async_context(
                new_postgres_database(request.getfixturevalue("postgres_url"))
            )
            database = DatabaseSettings(url=url)
        settings = Settings(
            data_dir=root / "lore",
            database=database,
            llm=LLMSettings(max_tokens=8),
            rate_limit=RateLimitSettings(enabled=False),
        )
        keys = {
            "root": await user_key(settings, "root", role="admin"),
            "alice": await user_key(settings, "alice", role="reader", grants=("handbook",)),
        }
        await _add_corpora(settings, "secrets", LEGACY_CORPUS)
        docs = root / "docs"
        docs.mkdir()
        (docs / "widgets.md").write_text("# Widgets\n\nThe widget is red.\n")
        app, client = await stack.enter_async_context(served_corpus(settings, docs, keys["root"]))
        yield DatabaseWorld(database=request.param, app=app, client=client, keys=keys)
