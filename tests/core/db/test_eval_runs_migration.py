"""Migration 0007 gives every eval run its suite's corpus, on SQLite and PostgreSQL, both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import migrate
from core.db.engine import create_engine
from core.settings import DatabaseSettings, Settings
from tests.conftest import new_postgres_database

INSERT_RUN = text(
    "INSERT INTO eval_runs (id, suite, suite_yaml, state, run_dir, created_at)"
    " VALUES (:id, 's', :yaml, 'succeeded', '/runs', :t)"
)
STORED = {
    # As the API stored them: a shipped suite's file, an inline suite dumped by yaml.safe_dump.
    "shipped": "name: web\ndataset:\n  loader: single_topic_web\ncorpus: web-docs\n",
    "inline": "name: widgets\ncorpus: secretA\nmode: retrieve\ncases:\n- question: Why?\n",
    # No corpus to be found: admins alone see these.
    "no-corpus": "name: odd\n",
    "not-yaml": "name: [unclosed\n",
    "not-a-mapping": "- corpus: x\n",
    "empty": "",
}
EXPECTED = {"shipped": "web-docs", "inline": "secretA"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with AsyncExitStack() as stack:
        database = DatabaseSettings()
        if request.param == "postgres":
            postgres_url = request.getfixturevalue("postgres_url")
            database = DatabaseSettings(
                url=await stack.enter_async_context(new_postgres_database(postgres_url))
            )
        engine = create_engine(Settings(data_dir=tmp_path, database=database))
        stack.push_async_callback(engine.dispose)
        yield engine


async def test_runs_get_the_corpus_their_suite_names_and_keep_their_rows_both_ways(
    engine: AsyncEngine,
) -> None:
    await migrate.upgrade(engine, "0006")
    async with engine.begin() as conn:
        for run_id, suite_yaml in STORED.items():
            await conn.execute(
                INSERT_RUN, {"id": run_id, "yaml": suite_yaml, "t": datetime(2026, 1, 1, tzinfo=UTC)}
            )

    await migrate.upgrade(engine, "0007")
    async with engine.connect() as conn:
        rows = {row.id: row.corpus for row in await conn.execute(text("SELECT id, corpus FROM eval_runs"))}
    assert rows == {run_id: EXPECTED.get(run_id) for run_id in STORED}

    await migrate.downgrade(engine, "0006")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM eval_runs"))).scalar() == len(STORED)
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision()
