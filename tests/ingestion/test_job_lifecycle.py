"""The job lifecycle that ingestion/jobs.py owns: per-document stages and timings, the order of
recorded documents, throughput and ETA, the progress event stream, and migration 0009."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import migrate
from core.db.engine import create_engine
from core.resources import Resources
from core.settings import DatabaseSettings, Settings
from ingestion import jobs
from ingestion.jobs import DocumentStage, DocumentStatus, JobEvent, JobState
from ingestion.pipeline import ingest_paths
from tests.conftest import new_postgres_database

REPO = Path(__file__).resolve().parents[2]


def write_docs(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"doc{i:02d}.md").write_text(f"# Document {i}\n\nDocument {i} is about topic {i}.\n")
    # Not a PDF at all: its extraction fails, and only it.
    (root / "broken.pdf").write_bytes(b"this is not a PDF")
    return root


async def first_job(resources: Resources) -> str:
    """The ID of the first job recorded, once it is (its row exists once it started)."""
    for _ in range(1000):
        listed = await jobs.list_jobs(resources.sessions)
        if listed:
            return str(listed[0]["id"])
        await asyncio.sleep(0.01)
    raise AssertionError("no job started")


async def collect(events: AsyncIterator[JobEvent]) -> list[JobEvent]:
    return [event async for event in events]


async def test_each_document_records_the_stage_it_reached_and_what_each_stage_took(
    resources: Resources, tmp_path: Path
) -> None:
    summary = await ingest_paths(resources, [write_docs(tmp_path / "docs", 3)], corpus="c")

    documents = await jobs.job_documents(resources.sessions, summary.job_id)

    assert [d["seq"] for d in documents] == [1, 2, 3, 4]
    by_name = {Path(d["source"]).name: d for d in documents}
    broken = by_name.pop("broken.pdf")
    assert (broken["status"], broken["stage"]) == (DocumentStatus.FAILED, DocumentStage.EXTRACT)
    assert broken["error"] and broken["chunks"] == 0
    for written in by_name.values():
        assert (written["status"], written["stage"]) == (DocumentStatus.NEW, DocumentStage.WRITE)
        assert written["chunks"] >= 1
        assert set(written["timings_ms"]) == {"read", "extract", "chunk", "embed", "write"}
        assert all(ms >= 0 for ms in written["timings_ms"].values())
    assert await jobs.job_documents(resources.sessions, summary.job_id, status=DocumentStatus.FAILED) == [
        broken
    ]

    # Run again: nothing changed, and each document says so after reading it.
    again = await ingest_paths(resources, [tmp_path / "docs"], corpus="c")
    statuses = {
        Path(d["source"]).name: (d["status"], d["stage"])
        for d in await jobs.job_documents(resources.sessions, again.job_id)
    }
    assert statuses["doc00.md"] == (DocumentStatus.UNCHANGED, DocumentStage.READ)


async def test_a_job_reports_its_throughput_and_no_eta_once_it_ended(
    resources: Resources, tmp_path: Path
) -> None:
    summary = await ingest_paths(resources, [write_docs(tmp_path / "docs", 2)], corpus="c")

    job = await jobs.get_job(resources.sessions, summary.job_id)

    assert job["state"] == JobState.SUCCEEDED and job["kind"] == jobs.JobKind.INGEST
    assert job["documents_done"] == job["documents_total"] == 3
    assert job["chunks_per_s"] is not None and job["chunks_per_s"] > 0
    assert job["eta_s"] is None
    assert [f["source"] for f in job["failures"]] == [str((tmp_path / "docs" / "broken.pdf").resolve())]


async def test_the_event_stream_of_an_ended_job_is_its_snapshot_documents_and_end(
    resources: Resources, tmp_path: Path
) -> None:
    summary = await ingest_paths(resources, [write_docs(tmp_path / "docs", 3)], corpus="c")

    events = await collect(jobs.job_events(resources.sessions, summary.job_id, poll_s=0.05))

    assert [e.event for e in events] == ["snapshot", "document", "document", "document", "document", "end"]
    assert [e.id for e in events if e.event == "document"] == [1, 2, 3, 4]
    assert events[-1].data["state"] == JobState.SUCCEEDED
    # A client that saw the first two documents gets the rest, none twice.
    resumed = await collect(jobs.job_events(resources.sessions, summary.job_id, after=2, poll_s=0.05))
    assert [(e.event, e.id) for e in resumed] == [
        ("snapshot", None),
        ("document", 3),
        ("document", 4),
        ("end", None),
    ]


async def test_the_event_stream_follows_a_running_job_to_its_end(
    resources: Resources, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs", 12)
    running = asyncio.create_task(ingest_paths(resources, [docs], corpus="c", progress=None))
    job_id = await first_job(resources)

    events = await collect(jobs.job_events(resources.sessions, job_id, poll_s=0.02))
    await running

    documents = [e for e in events if e.event == "document"]
    assert events[0].event == "snapshot" and events[-1].event == "end"
    assert [e.id for e in documents] == list(range(1, 14))
    assert len({e.data["source"] for e in documents}) == 13
    assert events[-1].data["documents_done"] == 13


async def test_a_job_that_does_not_exist_has_no_events(resources: Resources) -> None:
    with pytest.raises(jobs.NotFoundError):
        await anext(jobs.job_events(resources.sessions, "no-such-job"))


async def test_a_job_accepted_but_not_yet_recorded_is_shown_queued_until_it_starts(
    resources: Resources, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs", 1)
    accepted = jobs.describe_accepted(
        job_id="later", corpus="c", kind=jobs.JobKind.UPLOAD, total=2, accepted_at=datetime.now(UTC)
    )
    started = asyncio.Event()
    stream = jobs.job_events(
        resources.sessions, "later", poll_s=0.02, accepted=accepted, still_accepted=lambda: True
    )
    assert (await anext(stream)).data["state"] == JobState.QUEUED

    async def start() -> None:
        await asyncio.sleep(0.1)
        started.set()
        from ingestion.pipeline import ingest_sources
        from ingestion.sources import discover

        await ingest_sources(resources, discover([docs]), corpus="c", job_id="later")

    task = asyncio.create_task(start())
    rest = await collect(stream)
    await task
    assert [e.id for e in rest if e.event == "document"] == [1, 2]
    assert rest[-1].event == "end" and rest[-1].data["id"] == "later"


def test_no_job_or_document_state_is_written_outside_the_lifecycle_module() -> None:
    """The states are ingestion.jobs' enums: no other module spells one out."""
    states = "|".join(sorted({*JobState, *DocumentStatus, "reindexed", "pending"}))
    spelled = re.compile(rf"""["']({states})["']""")
    owners = {REPO / "ingestion" / "jobs.py"}
    offenders = []
    runners = ["api/job_runner.py", "api/corpora/routes.py", "api/routes/jobs.py", "cli/jobs.py"]
    for path in [*sorted((REPO / "ingestion").rglob("*.py")), *(REPO / r for r in runners)]:
        if path in owners:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if spelled.search(line) and "crawler.py" not in str(path):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with AsyncExitStack() as stack:
        database = DatabaseSettings()
        if request.param == "postgres":
            url = await stack.enter_async_context(
                new_postgres_database(request.getfixturevalue("postgres_url"))
            )
            database = DatabaseSettings(url=url)
        engine = create_engine(Settings(data_dir=tmp_path, database=database))
        stack.push_async_callback(engine.dispose)
        yield engine


async def test_migration_0009_normalises_stored_states_and_adds_stages_both_ways(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine, "0008")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO corpora (id, name, version, created_at, updated_at)"
                " VALUES ('c1', 'c', 0, :t, :t)"
            ),
            {"t": now},
        )
        for job_id, state in (("j1", "succeeded"), ("j2", "pending"), ("j3", "running")):
            await conn.execute(
                text(
                    "INSERT INTO ingestion_jobs (id, corpus_id, state, kind, cancel_requested,"
                    " documents_total, documents_new, documents_changed, documents_unchanged,"
                    " documents_failed,"
                    " documents_deleted, chunks_embedded, started_at)"
                    " VALUES (:id, 'c1', :state, 'reindex', false, 1, 0, 1, 0, 0, 0, 3, :t)"
                ),
                {"id": job_id, "state": state, "t": now},
            )
        await conn.execute(
            text(
                "INSERT INTO ingestion_job_documents (job_id, source, status, chunks)"
                " VALUES ('j1', '/a.md', 'reindexed', 3), ('j1', '/b.md', 'failed', 0)"
            )
        )

    await migrate.upgrade(engine, "0009")

    async with engine.connect() as conn:
        statuses = dict(
            (await conn.execute(text("SELECT source, status FROM ingestion_job_documents"))).all()
        )
        states = dict((await conn.execute(text("SELECT id, state FROM ingestion_jobs"))).all())
        attempts = (
            await conn.execute(text("SELECT DISTINCT attempts FROM ingestion_job_documents"))
        ).scalars()
        assert set(attempts) == {1}
    assert statuses == {"/a.md": "changed", "/b.md": "failed"}
    assert states == {"j1": "succeeded", "j2": "interrupted", "j3": "running"}

    await migrate.downgrade(engine, "0008")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM ingestion_job_documents"))).scalar() == 2


async def test_a_store_outage_while_a_document_is_written_is_retried_with_backoff(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import BackendError

    resources.settings.ingestion.retry_backoff_s = 0.01
    upsert, failures = resources.store.upsert, [BackendError("the vector store is unavailable")] * 2

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await upsert(*args, **kwargs)

    monkeypatch.setattr(resources.store, "upsert", flaky)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha is the first letter.\n")

    summary = await ingest_paths(resources, [docs], corpus="c")

    assert (summary.state, summary.documents_new) == (JobState.SUCCEEDED, 1)
    [document] = await jobs.job_documents(resources.sessions, summary.job_id)
    assert (document["status"], document["attempts"]) == (DocumentStatus.NEW, 3)


async def test_an_outage_that_outlasts_the_retries_stops_the_job(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import BackendError

    resources.settings.ingestion.retry_backoff_s = 0.01
    calls = 0

    async def down(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise BackendError("the vector store is unavailable")

    monkeypatch.setattr(resources.store, "upsert", down)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha is the first letter.\n")

    with pytest.raises(BackendError):
        await ingest_paths(resources, [docs], corpus="c")

    assert calls == resources.settings.ingestion.retries + 1
    [job] = await jobs.list_jobs(resources.sessions)
    assert job["state"] == JobState.FAILED
