"""`lore jobs ...` and `lore documents ...`: what ingestion did, is doing, and holds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.exits import run
from cli.runtime import Database, err, out, with_database
from core.settings import Settings, get_settings
from ingestion import documents as ingestion_documents
from ingestion import jobs as ingestion_jobs

jobs_app = typer.Typer(help="Ingestion jobs: list, inspect, cancel.", no_args_is_help=True)
documents_app = typer.Typer(help="Documents in a corpus.", no_args_is_help=True)


@jobs_app.command("list")
def list_jobs(
    corpus: Annotated[str | None, typer.Option(help="Only this corpus's jobs.")] = None,
    limit: Annotated[int, typer.Option(help="Most recent jobs shown.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
) -> None:
    """Recent ingestion jobs, newest first."""

    async def main(_: Settings, database: Database) -> list[dict[str, Any]]:
        return await ingestion_jobs.list_jobs(database.sessions, corpus=corpus, limit=limit)

    jobs = with_database(main)
    if as_json:
        print(json.dumps(jobs))
        return
    counts = ingestion_jobs.JOB_COUNTS[1:]
    table = Table(
        "id", "corpus", "state", *(c.removeprefix("documents_").replace("_", " ") for c in counts), "started"
    )
    for j in jobs:
        table.add_row(
            j["id"],
            j["corpus"],
            j["state"],
            *(str(j[k]) for k in counts),
            j["started_at"][:19],
        )
    out.print(table)


@jobs_app.command("show")
def show_job(
    job_id: Annotated[str, typer.Argument(help="The job's ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """A job's state, counts, rate and every failed document with its reason."""

    async def main(_: Settings, database: Database) -> dict[str, Any]:
        return await ingestion_jobs.get_job(database.sessions, job_id)

    job = with_database(main)
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

    async def main(_: Settings, database: Database) -> None:
        await ingestion_jobs.mark_interrupted_jobs(database.sessions)
        await ingestion_jobs.request_cancel(database.sessions, job_id)

    with_database(main)
    out.print(f"asked job {job_id} to stop; it stops after the documents it is writing")


@jobs_app.command("retry")
def retry_job(
    job_id: Annotated[str, typer.Argument(help="The ended job whose failed documents to run again.")],
    queue: Annotated[
        bool, typer.Option("--queue", help="Put the retry on the queue for a `lore worker`; print its ID.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new job as one JSON object.")] = False,
) -> None:
    """Run only the documents a job failed again, as a new job linked to it.

    An ingest's files are read again, a crawl's failed pages fetched again (no links followed), a
    failed re-index runs again. Exit status 1 when some fail again.
    """

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion.submit import retry_spec, run_job, submit_job

        settings = get_settings()
        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            spec = await retry_spec(resources, job_id)
            if queue:
                submitted = await submit_job(resources, spec, queue=True)
                return {"id": submitted.job_id, "retry_of": job_id, "state": submitted.state}
            summary = await run_job(resources, spec)
            return await ingestion_jobs.get_job(resources.sessions, summary.job_id)

    run_result = run(main())
    if as_json:
        print(json.dumps(run_result))
    elif queue:
        out.print(f"job {run_result['id']} queued: it retries the failed documents of job {job_id}")
    else:
        out.print(
            f"job {run_result['id']} {run_result['state']}: retried {run_result['documents_total']} "
            f"documents of job {job_id}, {run_result['documents_failed']} failed again"
        )
        for failure in run_result["failures"]:
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if not queue and run_result["documents_failed"]:
        raise typer.Exit(1)


@documents_app.command("list")
def list_documents(
    corpus: Annotated[str, typer.Option(help="The corpus.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
) -> None:
    """The corpus's documents with their chunk counts."""

    async def main(_: Settings, database: Database) -> list[dict[str, Any]]:
        return await ingestion_documents.list_documents(database.sessions, corpus=corpus)

    documents = with_database(main)
    if as_json:
        print(json.dumps(documents))
        return
    table = Table("source", "title", "chunks", "pages", title=f"{len(documents)} documents in {corpus!r}")
    for d in documents:
        table.add_row(d["source"], d["title"], str(d["chunks"]), str(d["pages"] or ""))
    out.print(table)
