"""On the real PostgreSQL: a document the database refuses after its chunks were upserted fails
alone, its points are removed, and the job's other documents are recorded, in process and queued.
No point is left in the vector store without a recorded document to find and delete it by."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import ingestion.stages
from core import ids
from core.db.models import DocumentRow, IngestionJobRow, JobDocumentRow
from core.resources import Resources
from ingestion.corpus_index import corpus_index
from ingestion.extract import ExtractedDocument, extract
from ingestion.pipeline import ingest_paths
from ingestion.queued import enqueue_sources, run_queued_job
from ingestion.sources import discover

pytestmark = pytest.mark.postgres

GOOD = ("alpha.md", "beta.md", "gamma.md")


class RecordingQueue:
    """Stands in for the Redis queue: the test runs the job's worker itself."""

    async def enqueue(self, job_id: str, *, attempt: str = "", copies: int | None = None) -> None:
        pass

    async def close(self) -> None:
        pass


@pytest.fixture
async def pg_resources(tmp_path: Path, fresh_postgres_url: str) -> AsyncIterator[Resources]:
    from core.db import migrate
    from core.db.engine import create_engine
    from core.resources import open_resources
    from core.settings import Settings

    settings = Settings(data_dir=tmp_path / "lore", database={"url": fresh_postgres_url})
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    async with open_resources(settings, with_llm=False) as resources:
        resources.queue = RecordingQueue()  # type: ignore[assignment]
        yield resources


def write_docs(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in GOOD:
        (root / name).write_text(f"# {name}\n\nThe {name} note is about {name} facts and nothing else.\n")
    # The file of the probe: `printf '# Evil\x00Title\n\ntext\n'`
    (root / "evil.md").write_bytes(b"# Evil\x00Title\n\ntext\n")
    return root


async def ingest(resources: Resources, docs: Path, path: str) -> str:
    if path == "in-process":
        return (await ingest_paths(resources, [docs], corpus="c")).job_id
    job_id = await enqueue_sources(resources, discover([docs]), corpus="c")
    assert await run_queued_job(resources, job_id) == "succeeded"
    return job_id


async def outcome(resources: Resources, job_id: str) -> dict[str, Any]:
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, job_id)
        assert job is not None
        statuses = {
            Path(source).name: (status, error)
            for source, status, error in (
                await session.execute(
                    select(JobDocumentRow.source, JobDocumentRow.status, JobDocumentRow.error).where(
                        JobDocumentRow.job_id == job_id
                    )
                )
            ).all()
        }
        rows = (await session.scalars(select(DocumentRow))).all()
    return {
        "job": (job.state, job.documents_new, job.documents_failed),
        "statuses": statuses,
        "documents": {Path(row.source).name: row for row in rows},
    }


async def assert_no_orphan_points(resources: Resources, docs: Path, recorded: dict[str, DocumentRow]) -> None:
    collection = (await corpus_index(resources, "c")).collection
    for name in (*GOOD, "evil.md"):
        doc_id = ids.document_id("c", str((docs / name).resolve()))
        points = await resources.store.chunk_ids(collection, document_id=doc_id)
        row = recorded.get(name)
        assert len(points) == (row.chunk_count if row is not None else 0), name
    assert await resources.store.count(collection) == sum(row.chunk_count for row in recorded.values())


@pytest.mark.parametrize("path", ["in-process", "queued"])
async def test_a_nul_in_a_title_is_ingested_with_the_other_documents(
    pg_resources: Resources, tmp_path: Path, path: str
) -> None:
    docs = write_docs(tmp_path / "docs")

    job_id = await ingest(pg_resources, docs, path)

    result = await outcome(pg_resources, job_id)
    assert result["job"] == ("succeeded", 4, 0)
    assert result["documents"]["evil.md"].title == "EvilTitle"
    await assert_no_orphan_points(pg_resources, docs, result["documents"])


def refused_by_the_database(name: str, data: bytes, **kwargs: Any) -> ExtractedDocument:
    """The real extraction, but evil.md keeps a NUL in its title, which PostgreSQL refuses when the
    document is recorded, after its chunks were upserted (as an extractor that cleaned nothing did)."""
    doc = extract(name, data, **kwargs)
    if name == "evil.md":
        return ExtractedDocument(f"Evil\x00{doc.title}", doc.kind, doc.blocks, doc.pages)
    return doc


@pytest.mark.parametrize("path", ["in-process", "queued"])
async def test_a_document_the_database_refuses_fails_alone_and_leaves_no_points(
    pg_resources: Resources, tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = write_docs(tmp_path / "docs")
    monkeypatch.setattr(ingestion.stages, "extract", refused_by_the_database)

    job_id = await ingest(pg_resources, docs, path)

    result = await outcome(pg_resources, job_id)
    assert result["job"] == ("succeeded", 3, 1)
    status, error = result["statuses"]["evil.md"]
    assert status == "failed"
    assert "the database refused the document" in (error or "")
    assert sorted(result["documents"]) == sorted(GOOD)
    await assert_no_orphan_points(pg_resources, docs, result["documents"])


async def test_a_changed_document_the_database_refuses_keeps_its_record_and_no_new_points(
    pg_resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = write_docs(tmp_path / "docs")
    (docs / "evil.md").write_text("# Evil\n\nFirst version.\n")
    await ingest_paths(pg_resources, [docs], corpus="c")
    (docs / "evil.md").write_text("# Evil\n\nSecond version, with other words.\n")
    monkeypatch.setattr(ingestion.stages, "extract", refused_by_the_database)

    summary = await ingest_paths(pg_resources, [docs], corpus="c")

    assert (summary.documents_unchanged, summary.documents_failed) == (3, 1)
    result = await outcome(pg_resources, summary.job_id)
    evil = result["documents"]["evil.md"]
    # the record is the first version's; the new chunks are gone with the stale ones, so the next
    # ingest (its content hash differs) indexes the file again
    assert evil.title == "Evil"
    collection = (await corpus_index(pg_resources, "c")).collection
    assert await pg_resources.store.chunk_ids(collection, document_id=evil.id) == set()
    monkeypatch.undo()
    again = await ingest_paths(pg_resources, [docs], corpus="c")
    assert (again.documents_changed, again.documents_failed) == (1, 0)
    result = await outcome(pg_resources, again.job_id)
    await assert_no_orphan_points(pg_resources, docs, result["documents"])
