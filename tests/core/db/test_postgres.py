"""Migrations and ingestion bookkeeping against a real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url

from core.db import migrate
from core.db.engine import create_engine
from core.db.models import DocumentRow, IngestionJobRow
from core.settings import DatabaseSettings, Settings

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_database(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database on the test server, dropped afterwards; yields its SQLAlchemy URL."""
    url = make_url(postgres_url)
    name = f"lore_test_{uuid.uuid4().hex[:12]}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrations_upgrade_and_downgrade(pg_database: str, tmp_path: Path) -> None:
    engine = create_engine(Settings(data_dir=tmp_path, database=DatabaseSettings(url=pg_database)))
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert {"corpora", "documents", "ingestion_jobs", "ingestion_job_documents"} <= tables
        await migrate.downgrade(engine)
        assert await migrate.current_revision(engine) is None
    finally:
        await engine.dispose()


async def test_unmigrated_database_is_refused_with_a_clear_error(pg_database: str, tmp_path: Path) -> None:
    from core.errors import ConfigurationError
    from core.resources import open_resources

    settings = Settings(data_dir=tmp_path, database=DatabaseSettings(url=pg_database))
    with pytest.raises(ConfigurationError, match="lore db upgrade"):
        async with open_resources(settings, with_llm=False, migrate_sqlite=True):
            pass


async def test_ingestion_bookkeeping_on_postgres(pg_database: str, tmp_path: Path) -> None:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    settings = Settings(data_dir=tmp_path / "lore", database=DatabaseSettings(url=pg_database))
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nApples are red.\n")
    (docs / "b.txt").write_text("Bananas are yellow.\n")
    (docs / "c.pdf").write_bytes(b"%PDF broken")

    async with open_resources(settings, with_llm=False) as resources:
        first = await ingest_paths(resources, [docs], corpus="fruit")
        second = await ingest_paths(resources, [docs], corpus="fruit")
        async with resources.sessions() as session:
            sources = sorted(
                Path(s).name for s in (await session.execute(select(DocumentRow.source))).scalars()
            )
            job = await session.get(IngestionJobRow, second.job_id)

    assert (first.documents_new, first.documents_failed) == (2, 1)
    assert (second.documents_unchanged, second.chunks_embedded) == (2, 0)
    assert sources == ["a.md", "b.txt"]
    assert job is not None and job.state == "succeeded" and job.finished_at is not None
