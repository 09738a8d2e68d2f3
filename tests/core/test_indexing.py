"""Collection names per corpus and generation, a corpus's config, and the searches a switch awaits."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

from core.components.embedding import DEFAULT_MODEL_NAME, canonical_model_name
from core.db.models import CorpusRow
from core.indexing import ActiveSearches, IndexConfig, collection_alias, collection_name, corpus_collections
from core.settings import EmbeddingSettings, IngestionSettings, Settings

# Qdrant's and every file system's safe subset; Lore's names keep within it.
VALID = re.compile(r"[a-z0-9_]{1,255}")


def test_collection_names_are_valid_everywhere_and_distinct_per_corpus() -> None:
    names = ["handbook", "Handbook", "Q3 reports/2026 (final)", "ünïcødé", "x" * 200, "a_b", "a-b"]
    aliases = [collection_alias(name) for name in names]

    assert all(VALID.fullmatch(alias) for alias in aliases)
    assert len(set(aliases)) == len(names)
    assert collection_alias("Q3 reports/2026 (final)") == (
        "lore_q3_reports_2026__final__" + hashlib.sha256(b"Q3 reports/2026 (final)").hexdigest()[:8]
    )
    # The slug is capped at 40 characters; the hash still tells long names apart.
    assert len(collection_alias("x" * 200)) == len("lore_") + 40 + 1 + 8
    assert collection_name("handbook", 3) == f"{collection_alias('handbook')}_g3"


def test_a_corpus_s_generations_are_told_from_other_corpora_s() -> None:
    names = [
        collection_name("docs", 2),
        collection_name("docs", 10),
        collection_name("docs", 1),
        collection_name("docs2", 1),
        collection_alias("docs"),
        "lore_chunks",
    ]

    assert corpus_collections(names, "docs") == [
        collection_name("docs", 1),
        collection_name("docs", 2),
        collection_name("docs", 10),
    ]


def test_a_corpus_keeps_its_own_config_and_the_settings_fill_only_what_it_lacks(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        embedding=EmbeddingSettings(model=str(tmp_path)),
        ingestion=IngestionSettings(chunk_tokens=120, chunk_overlap_tokens=10),
    )
    fresh = CorpusRow(id="1", name="c")
    made = CorpusRow(id="2", name="d", embedding_model="m", chunk_tokens=64, chunk_overlap_tokens=0)

    assert IndexConfig.of(fresh, settings) == IndexConfig(str(tmp_path.resolve()), 120, 10)
    assert IndexConfig.of(made, settings) == IndexConfig("m", 64, 0)
    assert IndexConfig.defaults(Settings(data_dir=tmp_path)).model == DEFAULT_MODEL_NAME


def test_model_names_are_recorded_canonically(tmp_path: Path) -> None:
    assert canonical_model_name(None) == DEFAULT_MODEL_NAME
    assert canonical_model_name("sentence-transformers/all-mpnet-base-v2") == (
        "sentence-transformers/all-mpnet-base-v2"
    )
    # A folder is recorded by its absolute path, so the name means the same from any directory.
    (tmp_path / "model").mkdir()
    assert canonical_model_name(str(tmp_path / "model" / ".." / "model")) == str(
        (tmp_path / "model").resolve()
    )


async def test_a_switch_waits_for_the_searches_running_then_and_not_for_later_ones() -> None:
    searches = ActiveSearches()
    release_early = asyncio.Event()

    async def search(corpora: list[str], release: asyncio.Event) -> None:
        with searches.track(corpora):
            await release.wait()

    early = asyncio.create_task(search(["c", "d"], release_early))
    other = asyncio.create_task(search(["d"], asyncio.Event()))
    await asyncio.sleep(0)
    assert (searches.reading("c"), searches.reading("d")) == (1, 2)

    waiting = asyncio.create_task(searches.wait_for_current("c", timeout_s=5))
    await asyncio.sleep(0.05)
    late_release = asyncio.Event()
    late = asyncio.create_task(search(["c"], late_release))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    release_early.set()
    # Done although a later search of the corpus still runs: that one read the new pointer.
    assert await asyncio.wait_for(waiting, 1) is True
    assert searches.reading("c") == 1
    assert await searches.wait_for_current("c", timeout_s=0.05) is False

    late_release.set()
    other.cancel()
    await asyncio.gather(early, late, return_exceptions=True)
    await asyncio.gather(other, return_exceptions=True)
    assert searches.reading("c") == searches.reading("d") == 0
