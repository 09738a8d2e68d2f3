"""What the `lore` commands share: the consoles, progress bars, the ingest summary, putting a job
on the queue, and running a command's work on the configured database."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.exits import FAILED, run
from core.settings import Settings, get_settings

# SQLAlchemy loads when a command opens the database, so `lore --help` stays quick.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    """The configured database, opened for one command: its engine and a session factory on it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def with_database(
    make: Callable[[Settings, Database], Awaitable[T]],
    *,
    settings: Settings | None = None,
    migrate_sqlite: bool = True,
    check_migrated: bool = True,
) -> T:
    """Run ``make(settings, database)`` on the configured database (``settings`` or the process's),
    disposing of the engine after; a Lore error (a database that does not answer, or is not
    migrated) ends the command with one line and status 2, as :func:`cli.exits.run` does.

    With ``check_migrated`` (the default) the database must answer at the latest migration before
    ``make`` runs, ``migrate_sqlite`` first migrating an embedded SQLite database (the CLI's
    single-user default). Without it the engine is only created, for work on the migrations
    themselves: ``make`` connects, inside ``core.db.engine.reaching_database``.
    """

    async def main() -> T:
        from core.db.engine import create_engine, open_engine, session_factory

        chosen = settings or get_settings()
        if check_migrated:
            engine = await open_engine(chosen, migrate_sqlite=migrate_sqlite)
        else:
            engine = create_engine(chosen)
        try:
            return await make(chosen, Database(engine, session_factory(engine)))
        finally:
            await engine.dispose()

    return run(main())


class Bar:
    """A rich progress bar on stderr, fed by ingestion and eval progress callbacks."""

    def __init__(self, label: str, enabled: bool) -> None:
        self._label = label
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not enabled,
            transient=False,
        )
        self._task: Any = None
        self._chunks = 0
        self._started = time.monotonic()

    def __enter__(self) -> Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def start(self, total: int) -> None:
        # A stream (a crawl feeding the ingest) calls again as its total grows.
        if self._task is None:
            self._started = time.monotonic()
            self._task = self._progress.add_task(self._label, total=total, info="")
        else:
            self._progress.update(self._task, total=total)

    def advance(self, source: str, status: str, chunks: int) -> None:
        self._chunks += chunks
        rate = self._chunks / max(time.monotonic() - self._started, 1e-6)
        info = f"{self._chunks} chunks, {rate:.1f} chunks/s" if self._label in ("ingest", "reindex") else ""
        from ingestion.jobs import DocumentStatus

        if status == DocumentStatus.FAILED:
            self._progress.console.print(f"[red]failed[/]: {source}")
        self._progress.update(self._task, advance=1, info=info)


class CrawlBar(Bar):
    """The ingest bar, after a crawl bar whose total grows as the crawl finds pages."""

    def __init__(self, enabled: bool) -> None:
        super().__init__("ingest", enabled)
        self._crawl_task: Any = None

    def fetched(self, url: str, outcome: str, *, done: int, total: int) -> None:
        if self._crawl_task is None:
            self._crawl_task = self._progress.add_task("crawl", total=total, info="")
        # A URL that failed is not printed here: it is a failed document, which the ingest bar prints.
        self._progress.update(self._crawl_task, completed=done, total=max(total, done), info=outcome)


def print_summary(summary: dict[str, Any], verb: str = "ingested") -> None:
    table = Table(title=f"{verb} into corpus {summary['corpus']!r}", show_header=False)
    from ingestion.pipeline import SUMMARY_COUNTS

    for key in SUMMARY_COUNTS:
        table.add_row(key, str(summary[key]))
    out.print(table)
    if summary["chunks_embedded"] == 0 and not summary["documents_failed"]:
        out.print("nothing changed: no chunk was embedded")


# With --queue: follow the job's progress until it ends (default: when stderr is a terminal).
Follow = Annotated[
    bool | None,
    typer.Option(
        "--follow/--no-follow",
        help="With --queue: draw the job's progress as workers record it, until it ends "
        "(default: when stderr is a terminal), or return at once with its ID.",
    ),
]


def enqueue(settings: Settings, spec: Any, *, as_json: bool, follow: bool | None = None) -> None:
    """Put the job ``spec`` (an ingestion.submit.JobSpec) on the queue; print its ID, or follow it
    to its end (its events, as `GET /v1/jobs/{id}/events` sends them) and print its outcome."""
    follow = sys.stderr.isatty() and not as_json if follow is None else follow

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion import jobs
        from ingestion.submit import submit_job

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            submitted = await submit_job(resources, spec, queue=True)
            queued = {
                "job_id": submitted.job_id,
                "corpus": spec.corpus,
                "kind": spec.kind,
                "state": submitted.state,
                "documents_total": len(spec.sources),
            }
            if not follow:
                return queued
            if not as_json:
                err.print(f"{spec.kind} job {submitted.job_id} queued; following it (Ctrl-C stops following)")
            with Bar(str(spec.kind), enabled=not as_json and sys.stderr.isatty()) as bar:
                async for event in jobs.job_events(resources.sessions, submitted.job_id):
                    if event.event in ("snapshot", "progress"):
                        bar.start(event.data["documents_total"])
                    elif event.event == "document":
                        bar.advance(event.data["source"], event.data["status"], event.data["chunks"])
            return await jobs.get_job(resources.sessions, submitted.job_id)

    result = run(main())
    if as_json:
        print(json.dumps(result))
    elif not follow:
        what = f"{result['documents_total']} documents " if result["documents_total"] else ""
        out.print(
            f"{result['kind']} job {result['job_id']} queued: {what}into {result['corpus']!r}; "
            f"follow it with `lore jobs show {result['job_id']}`"
        )
    else:
        out.print(
            f"{result['kind']} job {result['id']} {result['state']}: {result['documents_done']} documents "
            f"({result['documents_new']} new, {result['documents_changed']} changed, "
            f"{result['documents_failed']} failed), {result['chunks_embedded']} chunks embedded"
        )
        for failure in result["failures"]:
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if follow and (result["documents_failed"] or result["state"] != "succeeded"):
        raise typer.Exit(FAILED)
