"""Identity fixtures: a migrated database (SQLite, or a fresh PostgreSQL one) and a token codec."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.tokens import TokenCodec
from core.db import migrate
from core.db.engine import create_engine, session_factory
from core.db.models import CorpusRow
from core.settings import DatabaseSettings, Settings


@pytest.fixture
def jwt_keys() -> dict[str, str]:
    return {"k1": "k1-0123456789abcdefghijklmnopqrstuvwxyz", "k2": "k2-zyxwvutsrqponmlkjihgfedcba9876543210"}


@pytest.fixture
def codec(jwt_keys: dict[str, str]) -> TokenCodec:
    """A codec signing with key k1 only."""
    return TokenCodec({"k1": jwt_keys["k1"]}, issuer="lore", access_ttl_s=900, refresh_ttl_s=3600)


@asynccontextmanager
async def fresh_postgres(postgres_url: str) -> AsyncIterator[str]:
    """A new database on the test server, dropped afterwards; gives its SQLAlchemy URL."""
    url = make_url(postgres_url)
    name = f"lore_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated database holding the corpora `handbook` and `secrets`; each backend once."""
    async with AsyncExitStack() as stack:
        database = DatabaseSettings()
        if request.param == "postgres":
            url = await stack.enter_async_context(fresh_postgres(request.getfixturevalue("postgres_url")))
            database = DatabaseSettings(url=url)
        engine = create_engine(Settings(data_dir=tmp_path / "lore", database=database))
        stack.push_async_callback(engine.dispose)
        await migrate.upgrade(engine)
        factory = session_factory(engine)
        async with factory() as session:
            session.add_all([CorpusRow(id=str(uuid.uuid4()), name=name) for name in ("handbook", "secrets")])
            await session.commit()
        yield factory
