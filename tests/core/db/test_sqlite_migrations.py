"""Migrations on the embedded SQLite database keep the data they do not change."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.db import migrate
from core.db.engine import create_engine
from core.settings import Settings

NOW = "2026-01-01 00:00:00"
INSERT_DOCUMENT = text(
    "INSERT INTO documents (id, corpus_id, source, title, content_hash, index_signature, chunk_count,"
    " created_at, updated_at) VALUES ('d', 'c', 's', '', 'h', 'sig', 2, :t, :t)"
)


async def test_collections_migration_keeps_documents_both_ways(tmp_path: Path) -> None:
    # Foreign keys are on (as Lore runs SQLite): a migration that rebuilt `corpora` would
    # cascade its drop to every document, job and grant.
    engine = create_engine(Settings(data_dir=tmp_path))
    try:
        await migrate.upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO corpora (id, name, version, created_at, updated_at)"
                    " VALUES ('c', 'c', 3, :t, :t)"
                ),
                {"t": NOW},
            )
            await conn.execute(INSERT_DOCUMENT, {"t": NOW})

        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            corpus = (await conn.execute(text("SELECT collection, generation, version FROM corpora"))).one()
            assert tuple(corpus) == (None, 0, 3)
            await conn.execute(
                text("INSERT INTO document_blocks (document_id, data, updated_at) VALUES ('d', x'00', :t)"),
                {"t": NOW},
            )
            # A document's blocks go with it.
            await conn.execute(text("DELETE FROM documents WHERE id = 'd'"))
            assert (await conn.execute(text("SELECT count(*) FROM document_blocks"))).scalar() == 0
            await conn.execute(INSERT_DOCUMENT, {"t": NOW})

        await migrate.downgrade(engine, "0003")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM documents"))).scalar() == 1
    finally:
        await engine.dispose()
