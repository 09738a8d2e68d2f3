"""`lore jobs ...` and `lore documents ...`: what ingestion did, is doing, and holds."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from core.db.engine import create_engine, session_factory
from core.db.models import CorpusRow, DocumentRow, IngestionJobRow, JobDocumentRow
from core.errors import LoreError, NotFoundError
from core.settings import Settings, get_settings

jobs_app = typer.Typer(help="Ingestion jobs: list, inspect, cancel.", no_args_is_help=True)
documents_app = typer.Typer(help="Documents in a corpus.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

COUNTS = (
    "documents_total",
    "documents_new",
    "documents_changed",
    "documents_unchanged",
    "documents_deleted",
    "documents_failed",
    "chunks_embedded",
)


def _run(make: Any) -> Any:
    import asyncio

    async def main() -> Any:
        settings = get_settings()
        engine = create_engine(settings)
        try:
            if settings.uses_sqlite:
                from core.db import migrate

                await migrate.upgrade(engine)
            coro: Coroutine[Any, Any, Any] = make(settings, session_factory(engine))
            return await coro
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except LoreError as exc:
        err.print(f"[bold red]error[/]: {exc.message}")
        raise typer.Exit(2) from None


def _job_dict(job: IngestionJobRow, corpus: str) -> dict[str, Any]:
    finished = job.finished_at
    seconds = ((finished or job.heartbeat_at or job.started_at) - job.started_at).total_seconds()
    done = job.documents_new + job.documents_changed + job.documents_unchanged + job.documents_failed
    return {
        "id": job.id,
        "corpus": corpus,
        "kind": job.kind,
        "state": job.state,
        **{name: getattr(job, name) for name in COUNTS},
        "documents_per_s": round(done / seconds, 2) if seconds > 0 else None,
        "started_at": job.started_at.isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "error": job.error,
    }


@jobs_app.command("list")
def list_jobs(
    corpus: Annotated[str | None, typer.Option(help="Only this corpus's jobs.")] = None,
    limit: Annotated[int, typer.Option(help="Most recent jobs shown.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
) -> None:
    """Recent ingestion jobs, newest first."""

    async def main(_: Settings, sessions: Any) -> list[dict[str, Any]]:
        from ingestion.pipeline import mark_interrupted_jobs

        await mark_interrupted_jobs(sessions)
        async with sessions() as session:
            query = (
                select(IngestionJobRow, CorpusRow.name)
                .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
                .order_by(IngestionJobRow.started_at.desc())
                .limit(limit)
            )
            if corpus is not None:
                query = query.where(CorpusRow.name == corpus)
            return [_job_dict(job, name) for job, name in (await session.execute(query)).all()]

    jobs = _run(main)
    if as_json:
        print(json.dumps(jobs))
        return
    table = Table(
        "id", "corpus", "state", "new", "changed", "unchanged", "deleted", "failed", "chunks", "started"
    )
    for j in jobs:
        table.add_row(
            j["id"],
            j["corpus"],
            j["state"],
            *(str(j[k]) for k in COUNTS[1:]),
            j["started_at"][:19],
        )
    out.print(table)


@jobs_app.command("show")
def show_job(
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """A job's state, counts, rate and every failed document with its reason."""

    async def main(_: Settings, sessions: Any) -> dict[str, Any]:
        async with sessions() as session:
            row = (
                await session.execute(
                    select(IngestionJobRow, CorpusRow.name)
                    .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
                    .where(IngestionJobRow.id == job_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no job {job_id!r}")
            failures = (
                await session.execute(
                    select(JobDocumentRow).where(
                        JobDocumentRow.job_id == job_id, JobDocumentRow.status == "failed"
                    )
                )
            ).scalars()
            return {
                **_job_dict(row[0], row[1]),
                "failures": [{"source": f.source, "error": f.error} for f in failures],
            }

    job = _run(main)
    if as_json:
        print(json.dumps(job))
        return
    for key, value in job.items():
        if key != "failures":
            out.print(f"{key:20} {value}")
    for failure in job["failures"]:
        err.print(f"[red]failed[/] {failure['source']}: {failure['error']}")


@jobs_app.command("cancel")
def cancel_job(job_id: Annotated[str, typer.Argument(help="The running job's ID.")]) -> None:
    """Ask a running job to stop after the document it is working on."""

    async def main(_: Settings, sessions: Any) -> None:
        from ingestion.pipeline import mark_interrupted_jobs, request_cancel

        await mark_interrupted_jobs(sessions)
        await request_cancel(sessions, job_id)

    _run(main)
    out.print(f"asked job {job_id} to stop; it stops after its current document")


@documents_app.command("list")
def list_documents(
    corpus: Annotated[str, typer.Option(help="The corpus.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
) -> None:
    """The corpus's documents with their chunk counts."""

    async def main(_: Settings, sessions: Any) -> list[dict[str, Any]]:
        async with sessions() as session:
            corpus_row = (
                await session.execute(select(CorpusRow).where(CorpusRow.name == corpus))
            ).scalar_one_or_none()
            if corpus_row is None:
                raise NotFoundError(f"no corpus named {corpus!r}")
            rows = (
                await session.execute(
                    select(DocumentRow)
                    .where(DocumentRow.corpus_id == corpus_row.id)
                    .order_by(DocumentRow.source)
                )
            ).scalars()
            return [
                {
                    "id": r.id,
                    "source": r.source,
                    "title": r.title,
                    "chunks": r.chunk_count,
                    "pages": r.pages,
                    "updated_at": r.updated_at.isoformat(),
                    "missing_since": r.missing_since.isoformat() if r.missing_since else None,
                }
                for r in rows
            ]

    documents = _run(main)
    if as_json:
        print(json.dumps(documents))
        return
    table = Table("source", "title", "chunks", "pages", title=f"{len(documents)} documents in {corpus!r}")
    for d in documents:
        table.add_row(d["source"], d["title"], str(d["chunks"]), str(d["pages"] or ""))
    out.print(table)
