"""Ingestion against the embedded backends: idempotent, incremental, failures isolated."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from core.db.models import CorpusRow, DocumentBlocksRow, DocumentRow, IngestionJobRow, JobDocumentRow
from core.indexing import collection_name
from core.resources import Resources
from ingestion.corpus_index import corpus_index
from ingestion.extract import extract
from ingestion.formats.document import unpack_blocks
from ingestion.pipeline import ingest_paths
from ingestion.sources import discover


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "alpha.md").write_text("# Alpha\n\nAlpha widgets are blue and weigh three grams.\n")
    (root / "beta.txt").write_text("Beta gadgets run on solar power.\n\nThey were invented in 1999.\n")
    (root / "notes.yaml").write_text("ignored: true\n")
    (root / ".hidden.md").write_text("# Hidden\n\nnever read\n")
    return root


async def collection(resources: Resources, corpus: str) -> str:
    return (await corpus_index(resources, corpus)).collection


async def corpus_version(resources: Resources, name: str) -> int:
    async with resources.sessions() as session:
        return (await session.execute(select(CorpusRow.version).where(CorpusRow.name == name))).scalar_one()


def test_discover_takes_supported_files_and_skips_hidden_ones(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    assert sorted(Path(s.source).name for s in discover([root])) == ["alpha.md", "beta.txt"]
    # a file named directly is taken even when unsupported, so it can fail with its reason
    assert [Path(s.source).name for s in discover([root / "notes.yaml"])] == ["notes.yaml"]


async def test_reingest_of_unchanged_files_embeds_nothing(resources: Resources, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    first = await ingest_paths(resources, [root], corpus="c")
    assert (first.documents_new, first.documents_failed) == (2, 0)
    assert first.chunks_embedded == await resources.store.count(await collection(resources, "c")) > 0
    ids_before = await resources.store.chunk_ids(await collection(resources, "c"))
    version = await corpus_version(resources, "c")

    second = await ingest_paths(resources, [root], corpus="c")

    assert (second.documents_new, second.documents_changed, second.documents_unchanged) == (0, 0, 2)
    assert second.chunks_embedded == 0
    assert await resources.store.chunk_ids(await collection(resources, "c")) == ids_before
    assert await corpus_version(resources, "c") == version


async def test_changed_file_replaces_its_chunks(resources: Resources, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    await ingest_paths(resources, [root], corpus="c")
    before = await resources.store.chunk_ids(await collection(resources, "c"))
    version = await corpus_version(resources, "c")

    (root / "alpha.md").write_text("# Alpha\n\nAlpha widgets are now green.\n")
    summary = await ingest_paths(resources, [root], corpus="c")

    assert (summary.documents_changed, summary.documents_unchanged) == (1, 1)
    after = await resources.store.chunk_ids(await collection(resources, "c"))
    assert after != before and len(after) == len(before)
    hits = await resources.store.search(
        await collection(resources, "c"),
        dense=await resources.embedder.embed_query("widget colour"),
        sparse=None,
        k=10,
    )
    texts = " ".join(h.text for h in hits)
    assert "green" in texts and "blue" not in texts
    assert await corpus_version(resources, "c") == version + 1


async def test_a_bad_file_fails_alone_with_its_reason(resources: Resources, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (root / "empty.md").write_text("")
    summary = await ingest_paths(resources, [root, root / "notes.yaml"], corpus="c")
    assert (summary.documents_new, summary.documents_failed) == (2, 3)
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
        assert job is not None and job.state == "succeeded" and job.documents_failed == 3
        failed = (
            await session.execute(select(JobDocumentRow).where(JobDocumentRow.status == "failed"))
        ).scalars()
        reasons = {Path(r.source).name: r.error or "" for r in failed}
        stored = (await session.execute(select(DocumentRow.source))).scalars().all()
    assert "PDF" in reasons["broken.pdf"]
    assert "empty" in reasons["empty.md"]
    assert "unsupported file type" in reasons["notes.yaml"]
    assert sorted(Path(s).name for s in stored) == ["alpha.md", "beta.txt"]


async def test_same_file_in_two_corpora_is_two_documents(resources: Resources, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    await ingest_paths(resources, [root], corpus="one")
    await ingest_paths(resources, [root], corpus="two")
    one = await resources.store.chunk_ids(await collection(resources, "one"))
    two = await resources.store.chunk_ids(await collection(resources, "two"))
    assert one and two and not one & two
    assert await collection(resources, "one") != await collection(resources, "two")
    hits = await resources.store.search(
        await collection(resources, "one"),
        dense=await resources.embedder.embed_query("solar"),
        sparse=None,
        k=10,
    )
    assert {h.corpus for h in hits} == {"one"}


async def test_pipeline_runs_on_the_qdrant_client_backend(tmp_path: Path) -> None:
    """The production store (qdrant-client, here in local mode) behind the same pipeline."""
    from core.resources import open_resources
    from core.settings import Settings, VectorStoreSettings

    settings = Settings(data_dir=tmp_path / "lore", vector_store=VectorStoreSettings(url=":memory:"))
    root = write_corpus(tmp_path / "docs")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as res:
        first = await ingest_paths(res, [root], corpus="c")
        second = await ingest_paths(res, [root], corpus="c")
        hits = await res.store.search(
            await collection(res, "c"),
            dense=await res.embedder.embed_query("solar power"),
            sparse=res.sparse.embed_query("solar power"),
            k=3,
        )
    assert first.documents_new == 2 and second.chunks_embedded == 0
    assert Path(hits[0].source).name == "beta.txt"


async def test_ingest_keeps_each_document_s_extracted_blocks(resources: Resources, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    await ingest_paths(resources, [root], corpus="c")

    async with resources.sessions() as session:
        stored = {
            Path(source).name: unpack_blocks(data)
            for source, data in await session.execute(
                select(DocumentRow.source, DocumentBlocksRow.data).join(
                    DocumentBlocksRow, DocumentBlocksRow.document_id == DocumentRow.id
                )
            )
        }
    alpha = root / "alpha.md"
    assert stored["alpha.md"] == extract("alpha.md", alpha.read_bytes()).blocks
    assert set(stored) == {"alpha.md", "beta.txt"}


async def test_a_corpus_whose_collection_is_gone_is_re_embedded_at_its_next_ingest(
    resources: Resources, tmp_path: Path
) -> None:
    # Given a corpus whose collection was deleted by hand
    root = write_corpus(tmp_path / "docs")
    first = await ingest_paths(resources, [root], corpus="c")
    await resources.store.drop_collection(await collection(resources, "c"))

    # When it is ingested again, every document is embedded anew
    again = await ingest_paths(resources, [root], corpus="c")

    assert (again.documents_changed, again.chunks_embedded) == (2, first.chunks_embedded)
    assert await resources.store.count(await collection(resources, "c")) == first.chunks_embedded


async def test_documents_of_an_older_lore_are_re_embedded_into_the_corpus_s_first_collection(
    resources: Resources, tmp_path: Path
) -> None:
    # Given the rows an older Lore left (documents indexed, no collection on the corpus) and a
    # vector store emptied as the upgrade asks
    root = write_corpus(tmp_path / "docs")
    first = await ingest_paths(resources, [root], corpus="c")
    await resources.store.drop_collection(await collection(resources, "c"))
    async with resources.sessions() as session:
        await session.execute(
            update(CorpusRow).values(collection=None, generation=0, embedding_model=None, chunk_tokens=None)
        )
        await session.commit()

    again = await ingest_paths(resources, [root], corpus="c")

    assert (again.documents_changed, again.chunks_embedded) == (2, first.chunks_embedded)
    assert await collection(resources, "c") == collection_name("c", 1)
