"""Jobs: vanished sources are deleted (after a grace), cancellation stops a job, dead jobs are marked."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.models import DocumentBlocksRow, DocumentRow, IngestionJobRow, utcnow
from core.resources import Resources, open_resources
from core.settings import IngestionSettings, Settings
from ingestion.corpus_index import corpus_index
from ingestion.documents import delete_document
from ingestion.jobs import mark_interrupted_jobs, request_cancel, this_worker
from ingestion.pipeline import ingest_paths


def make_docs(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\nFact number {i} is about topic {i * 3}.\n")
    return root


async def sources(resources: Resources) -> set[str]:
    async with resources.sessions() as session:
        return {Path(s).name for s in (await session.execute(select(DocumentRow.source))).scalars()}


async def test_a_deleted_file_is_deleted_with_its_chunks(resources: Resources, tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    await ingest_paths(resources, [docs], corpus="c")
    (docs / "doc01.md").unlink()
    summary = await ingest_paths(resources, [docs], corpus="c")
    assert (summary.documents_unchanged, summary.documents_deleted) == (2, 1)
    assert await sources(resources) == {"doc00.md", "doc02.md"}
    hits = await resources.store.search(
        (await corpus_index(resources, "c")).collection,
        dense=await resources.embedder.embed_query("Fact number 1"),
        sparse=None,
        k=10,
    )
    assert all(Path(h.source).name != "doc01.md" for h in hits)


async def test_files_named_directly_never_prune_their_folder(resources: Resources, tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    await ingest_paths(resources, [docs], corpus="c")
    summary = await ingest_paths(resources, [docs / "doc00.md"], corpus="c")
    assert summary.documents_deleted == 0
    assert len(await sources(resources)) == 3


async def test_a_missing_file_waits_out_the_grace(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "lore", ingestion=IngestionSettings(gone_grace_s=3600))
    docs = make_docs(tmp_path / "docs", 2)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="c")
        (docs / "doc00.md").unlink()
        summary = await ingest_paths(resources, [docs], corpus="c")
        async with resources.sessions() as session:
            gone = (
                await session.execute(select(DocumentRow).where(DocumentRow.missing_since.is_not(None)))
            ).scalars()
            marked = [Path(r.source).name for r in gone]
        assert summary.documents_deleted == 0 and marked == ["doc00.md"]
        # it comes back before the grace ends: no longer missing
        make_docs(docs, 2)
        await ingest_paths(resources, [docs], corpus="c")
        async with resources.sessions() as session:
            still = (await session.execute(select(DocumentRow.missing_since))).scalars().all()
        assert still == [None, None]


async def test_cancel_stops_the_job_after_the_current_batch(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = make_docs(tmp_path / "docs", 8)
    # Small stages, so a batch holds a document or two and the job stops well before its end.
    monkeypatch.setattr(resources.settings.ingestion, "queue_documents", 1)
    monkeypatch.setattr(resources.settings.ingestion, "extract_workers", 1)
    pending: list[asyncio.Task[None]] = []

    class CancelAfterFirstDocument:
        def start(self, total: int) -> None: ...

        def advance(self, source: str, status: str, chunks: int) -> None:
            # What `lore jobs cancel` does from another process, issued once the first document is in.
            if not pending:
                pending.append(asyncio.create_task(cancel_the_running_job(resources)))

    summary = await ingest_paths(resources, [docs], corpus="c", progress=CancelAfterFirstDocument())
    await asyncio.gather(*pending)
    assert summary.state == "cancelled"
    assert 1 <= summary.documents_new < 8
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
    assert job is not None and job.state == "cancelled" and job.finished_at is not None
    # Every chunk written belongs to a recorded document: nothing is left half done.
    async with resources.sessions() as session:
        recorded = (await session.execute(select(func.sum(DocumentRow.chunk_count)))).scalar_one()
    assert await resources.store.count((await corpus_index(resources, "c")).collection) == recorded


async def cancel_the_running_job(resources: Resources) -> None:
    async with resources.sessions() as session:
        job_id = (
            await session.execute(select(IngestionJobRow.id).where(IngestionJobRow.state == "running"))
        ).scalar_one()
    await request_cancel(resources.sessions, job_id)


async def test_jobs_whose_process_died_are_marked_interrupted(resources: Resources, tmp_path: Path) -> None:
    summary = await ingest_paths(resources, [make_docs(tmp_path / "docs", 1)], corpus="c")
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
        assert job is not None
        job.state, job.heartbeat_at, job.finished_at = "running", utcnow() - timedelta(hours=1), None
        job.worker = "another-host:123"
        await session.commit()
    assert await mark_interrupted_jobs(resources.sessions) == 1
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
    assert job is not None and job.state == "interrupted"


async def test_a_job_of_a_dead_local_process_is_interrupted_at_once(
    resources: Resources, tmp_path: Path
) -> None:
    import sys

    process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await process.wait()
    summary = await ingest_paths(resources, [make_docs(tmp_path / "docs", 1)], corpus="c")
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
        assert job is not None
        # a fresh heartbeat, but the process that held the job no longer exists
        job.state, job.heartbeat_at, job.finished_at = "running", utcnow(), None
        job.worker = f"{this_worker().rpartition(':')[0]}:{process.pid}"
        await session.commit()
    assert await mark_interrupted_jobs(resources.sessions) == 1


async def test_deleting_a_document_deletes_its_chunks_and_stored_blocks(
    resources: Resources, tmp_path: Path
) -> None:
    await ingest_paths(resources, [make_docs(tmp_path / "docs", 2)], corpus="c")
    index = await corpus_index(resources, "c")
    async with resources.sessions() as session:
        doc = (await session.execute(select(DocumentRow).order_by(DocumentRow.source))).scalars().first()
    assert doc is not None and await resources.store.chunk_ids(index.collection, document_id=doc.id)

    await delete_document(resources, doc.id)

    assert await resources.store.chunk_ids(index.collection, document_id=doc.id) == set()
    async with resources.sessions() as session:
        blocks = (await session.execute(select(DocumentBlocksRow.document_id))).scalars().all()
    assert len(blocks) == 1 and doc.id not in blocks
