"""Deleting a corpus removes every collection it has, serving or left over."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from api.corpora import service
from core.db.models import CorpusRow, DocumentBlocksRow
from core.indexing import collection_alias, collection_name
from core.resources import Resources
from ingestion.pipeline import ingest_paths


async def test_deleting_a_corpus_drops_every_generation_and_its_blocks(
    resources: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nApples are red.\n")
    await ingest_paths(resources, [docs], corpus="c")
    await ingest_paths(resources, [docs], corpus="keep")
    # a generation a killed re-index left behind
    await resources.store.ensure_collection(collection_name("c", 2), dim=resources.embedder.dim)
    async with resources.sessions() as session:
        corpus_id = await session.scalar(select(CorpusRow.id).where(CorpusRow.name == "c"))
    assert corpus_id is not None

    await service.delete(resources, corpus_id=corpus_id)

    assert await resources.store.collections() == [collection_name("keep", 1)]
    assert await resources.store.aliases() == {collection_alias("keep"): collection_name("keep", 1)}
    async with resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DocumentBlocksRow)) == 1
