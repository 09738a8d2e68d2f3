"""The `lore` command: ingest, reindex, ask, serve, evaluate, migrate."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

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

from cli.batch import batch_app
from cli.exits import FAILED, USAGE, fail, print_error
from cli.exits import run as _run
from cli.jobs import documents_app, jobs_app
from cli.mcp import mcp_command
from cli.users import grants_app, keys_app, users_app
from core.errors import LoreError
from core.settings import Settings, get_settings

app = typer.Typer(help="Lore: grounded, cited answers over your documents.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluation suites.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(jobs_app, name="jobs")
app.add_typer(documents_app, name="documents")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(grants_app, name="grants")
app.add_typer(batch_app, name="batch")
app.command("mcp")(mcp_command)

out = Console()
err = Console(stderr=True)


class _Bar:
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

    def __enter__(self) -> _Bar:
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


def _print_summary(summary: dict[str, Any], verb: str = "ingested") -> None:
    table = Table(title=f"{verb} into corpus {summary['corpus']!r}", show_header=False)
    from ingestion.pipeline import SUMMARY_COUNTS

    for key in SUMMARY_COUNTS:
        table.add_row(key, str(summary[key]))
    out.print(table)
    if summary["chunks_embedded"] == 0 and not summary["documents_failed"]:
        out.print("nothing changed: no chunk was embedded")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to ingest.")],
    corpus: Annotated[
        str | None, typer.Option(help="Corpus to ingest into (default: setting default_corpus).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Put the job on the queue (LORE_QUEUE__REDIS_URL) for `lore worker` processes, which "
            "must see the same paths.",
        ),
    ] = False,
    follow: _Follow = None,
) -> None:
    """Ingest files (PDF, Markdown, text, HTML) into a corpus; unchanged files are skipped.

    Exit status 0 when every document was ingested, 1 when some failed (each is listed with its
    reason; the rest were ingested), 2 on a usage or configuration error.
    """
    settings = get_settings()
    if queue:
        import os

        from ingestion.jobs import JobKind
        from ingestion.sources import discover
        from ingestion.submit import JobSpec

        spec = JobSpec(
            kind=JobKind.INGEST,
            corpus=corpus or settings.default_corpus,
            sources=discover(paths),
            prune_under=[f"{p.resolve()}{os.sep}" for p in paths if p.is_dir()],
        )
        _enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion import jobs
        from ingestion.pipeline import ingest_paths

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            with _Bar("ingest", enabled=not as_json and sys.stderr.isatty()) as bar:
                summary = await ingest_paths(
                    resources, paths, corpus=corpus or settings.default_corpus, progress=bar
                )
            result = summary.as_dict()
            if summary.documents_failed:
                async with resources.sessions() as session:
                    outcomes = await jobs.document_outcomes(session, job_id=summary.job_id)
                result["failures"] = jobs.failures_of(outcomes)
            return result

    result = _run(main())
    if as_json:
        print(json.dumps(result))
    else:
        _print_summary(result)
        for failure in result.get("failures", []):
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if result["documents_failed"]:
        raise typer.Exit(FAILED)


# With --queue: follow the job's progress until it ends (default: when stderr is a terminal).
_Follow = Annotated[
    bool | None,
    typer.Option(
        "--follow/--no-follow",
        help="With --queue: draw the job's progress as workers record it, until it ends "
        "(default: when stderr is a terminal), or return at once with its ID.",
    ),
]


def _enqueue(settings: Settings, spec: Any, *, as_json: bool, follow: bool | None = None) -> None:
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
            with _Bar(str(spec.kind), enabled=not as_json and sys.stderr.isatty()) as bar:
                async for event in jobs.job_events(resources.sessions, submitted.job_id):
                    if event.event in ("snapshot", "progress"):
                        bar.start(event.data["documents_total"])
                    elif event.event == "document":
                        bar.advance(event.data["source"], event.data["status"], event.data["chunks"])
            return await jobs.get_job(resources.sessions, submitted.job_id)

    result = _run(main())
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


@app.command()
def worker(
    burst: Annotated[
        bool, typer.Option("--burst", help="Stop once the queue is empty instead of waiting for jobs.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 0 if the worker on this host is serving, else 1 (a healthcheck)."),
    ] = False,
) -> None:
    """Run queued ingestion jobs and batches (LORE_QUEUE__REDIS_URL) until stopped; run any number."""
    import logging

    settings = get_settings()
    if not settings.queue.redis_url:
        err.print("[red]no queue:[/] set LORE_QUEUE__REDIS_URL to the Redis the API and the CLI enqueue on")
        raise typer.Exit(2)
    if check:
        from core.components.queue import worker_is_healthy

        raise typer.Exit(0 if _run(worker_is_healthy(settings.queue)) else 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> None:
        from core.components.queue import run_worker
        from core.resources import open_resources
        from ingestion.queued import requeue_orphaned_jobs
        from ingestion.submit import run_queued

        if settings.vector_store.url is None or settings.uses_sqlite:
            logging.getLogger("lore.worker").warning(
                "this worker writes to an embedded store (vector store or database) under its own data "
                "dir: only workers and API processes that share it see its work; set "
                "LORE_VECTOR_STORE__URL and LORE_DATABASE__URL to share them"
            )
        from api.batches.runner import answer_queued_batch
        from core.components.ratelimit import open_rate_limiter

        # The LLM loads on the first batch: a worker that only ingests never needs it.
        async with open_resources(settings, with_llm=False) as resources:
            await requeue_orphaned_jobs(resources)
            # Batches spend their owners' query buckets: shared with the API when they are in Redis.
            limiter = open_rate_limiter(settings)

            async def handle(job_id: str) -> str:
                return await run_queued(resources, job_id)

            async def handle_batch(batch_id: str) -> str:
                return await answer_queued_batch(resources, batch_id, limiter)

            try:
                await run_worker(settings.queue, handle, batch_handler=handle_batch, burst=burst)
            finally:
                await limiter.close()

    _run(main())


class _CrawlBar(_Bar):
    """The ingest bar, after a crawl bar whose total grows as the crawl finds pages."""

    def __init__(self, enabled: bool) -> None:
        super().__init__("ingest", enabled)
        self._crawl_task: Any = None

    def fetched(self, url: str, outcome: str, *, done: int, total: int) -> None:
        if self._crawl_task is None:
            self._crawl_task = self._progress.add_task("crawl", total=total, info="")
        # A URL that failed is not printed here: it is a failed document, which the ingest bar prints.
        self._progress.update(self._crawl_task, completed=done, total=max(total, done), info=outcome)


@app.command()
def crawl(
    urls: Annotated[list[str], typer.Argument(help="Start URLs: pages, sitemaps or sitemap indexes.")],
    corpus: Annotated[
        str | None, typer.Option(help="Corpus to crawl into (default: setting default_corpus).")
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option(min=1, help="Most pages fetched (default: ingestion.crawl.max_pages).")
    ] = None,
    max_depth: Annotated[
        int | None, typer.Option(min=0, help="Most links followed from a start URL (default: setting).")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Host, address or CIDR network that may be reached although private (repeatable)."),
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option(help="Crawl only URLs this regular expression matches (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip URLs this regular expression matches (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")] = False,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Put the crawl on the queue for a `lore worker`."),
    ] = False,
    follow: _Follow = None,
) -> None:
    """Crawl web sites into a corpus; a page unchanged since the last crawl costs a 304.

    Exit status as `lore ingest`: 1 when some pages failed (refused, unreachable, unreadable).
    """
    from ingestion.crawl import crawl_settings as merge_crawl_settings

    settings = get_settings()
    crawl_settings = merge_crawl_settings(
        settings.ingestion.crawl,
        max_pages=max_pages,
        max_depth=max_depth,
        allow_hosts=allow_host or [],
        include_patterns=include or [],
        exclude_patterns=exclude or [],
        ceiling=False,
    )
    if queue:
        from ingestion.jobs import JobKind
        from ingestion.submit import JobSpec

        spec = JobSpec(
            kind=JobKind.CRAWL, corpus=corpus or settings.default_corpus, urls=urls, crawl=crawl_settings
        )
        _enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion.crawl import crawl as run_crawl

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            bar = _CrawlBar(enabled=not as_json and sys.stderr.isatty())
            with bar:
                summary = await run_crawl(
                    resources,
                    urls,
                    corpus=corpus or settings.default_corpus,
                    settings=crawl_settings,
                    progress=bar,
                    ingest_progress=bar,
                )
            return summary.as_dict()

    result = _run(main())
    if as_json:
        print(json.dumps(result))
    else:
        _print_summary(result, verb="crawled")
        if result["skipped"]:
            out.print("skipped: " + ", ".join(f"{n} {why}" for why, n in result["skipped"].items()))
        for gone in result["gone"]:
            out.print(f"[yellow]gone[/] {gone['url']}: {gone['reason']}", highlight=False)
        for failure in result["failures"]:
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if result["documents_failed"]:
        raise typer.Exit(FAILED)


@app.command()
def reindex(
    corpus: Annotated[str, typer.Option(help="Corpus to re-embed.")],
    model: Annotated[
        str | None,
        typer.Option(help="Embedding model (sentence-transformers name or folder; default: the corpus's)."),
    ] = None,
    chunk_tokens: Annotated[
        int | None, typer.Option(min=8, help="Most tokens in one chunk (default: the corpus's).")
    ] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(min=0, help="Tokens repeated between chunks (default: the corpus's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")] = False,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Put the re-index on the queue for a `lore worker`."),
    ] = False,
    follow: _Follow = None,
) -> None:
    """Re-embed a corpus into a new collection while search goes on using the old one, then switch."""
    settings = get_settings()
    if queue:
        from ingestion.jobs import JobKind
        from ingestion.submit import JobSpec

        spec = JobSpec(
            kind=JobKind.REINDEX,
            corpus=corpus,
            model=model,
            chunk_tokens=chunk_tokens,
            chunk_overlap_tokens=chunk_overlap,
        )
        _enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion.reindex import reindex_corpus

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            with _Bar("reindex", enabled=not as_json and sys.stderr.isatty()) as bar:
                summary = await reindex_corpus(
                    resources,
                    corpus,
                    model=model,
                    chunk_tokens=chunk_tokens,
                    chunk_overlap_tokens=chunk_overlap,
                    progress=bar,
                )
            return summary.as_dict()

    result = _run(main())
    if as_json:
        print(json.dumps(result))
        return
    from ingestion.reindex import REINDEX_SUMMARY

    table = Table(title=f"re-indexed corpus {result['corpus']!r}: {result['state']}", show_header=False)
    for key in REINDEX_SUMMARY:
        table.add_row(key, str(result[key]))
    out.print(table)
    if result["note"]:
        err.print(f"[yellow]note[/]: {result['note']}", highlight=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    corpus: Annotated[str | None, typer.Option(help="Corpus to search (default: every corpus).")] = None,
    k: Annotated[int | None, typer.Option(help="Sources to retrieve (default: setting retrieval.k).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as one JSON object.")] = False,
) -> None:
    """Ask a question: the answer streams to the terminal, then its citations."""
    settings = get_settings()

    async def main() -> dict[str, Any] | None:
        from core.resources import open_resources
        from retrieval import service

        async with open_resources(settings, migrate_sqlite=True) as resources:
            if as_json:
                answer = await service.answer(resources, service.Ask(question, corpus=corpus, k=k))
                return {
                    "answer": answer.answer,
                    "citations": [
                        {
                            "n": c.n,
                            "document_id": c.document_id,
                            "title": c.title,
                            "source": c.source,
                            "page": c.page,
                            "text": c.text,
                        }
                        for c in answer.citations
                    ],
                    "model": answer.model,
                    "timings": answer.timings,
                    "cached": answer.cached,
                    "refused": answer.refused,
                    "answer_kind": answer.answer_kind,
                    "guardrails": answer.guardrails,
                    "unsupported_sentences": [
                        {"sentence": u.sentence, "reason": u.reason} for u in answer.unsupported_sentences
                    ],
                }
            events = await service.stream_answer(resources, service.Ask(question, corpus=corpus, k=k))
            async for event in events:
                if isinstance(event, service.TokenEvent):
                    out.print(event.text, end="", soft_wrap=True, highlight=False, markup=False)
                elif isinstance(event, service.SentenceRemovedEvent):
                    # Never printed as an answer: say on stderr what was left out, and why.
                    note = f"removed a sentence: {event.reason}"
                    err.print(note, style="dim", markup=False, highlight=False)
                elif isinstance(event, service.RefusalEvent):
                    # No sentence of the draft was supported: the refusal is the answer.
                    out.print(event.text, highlight=False, markup=False)
                elif isinstance(event, service.CitationsEvent):
                    out.print()
                    _print_citations(event.citations)
            return None

    result = _run(main())
    if result is not None:
        print(json.dumps(result, ensure_ascii=False))


def _print_citations(citations: list[Any]) -> None:
    if not citations:
        out.print("\n[dim]no citations[/]")
        return
    out.print("\n[bold]Sources[/]")
    for c in citations:
        page = f", page {c.page}" if c.page is not None else ""
        passage = " ".join(c.text.split())
        passage = passage if len(passage) <= 160 else passage[:157] + "..."
        out.print(f"  [{c.n}] {c.title}{page} - {c.source}", markup=False, highlight=False)
        out.print(f"      {passage}", markup=False, highlight=False, style="dim")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes (uvicorn workers); more than one needs the Qdrant server "
            "(LORE_VECTOR_STORE__URL) and should have Redis and PostgreSQL.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from api.ops.readiness import Readiness

    settings = get_settings()
    if workers > 1 and settings.vector_store.url is None:
        raise fail(
            "--workers needs a Qdrant server (LORE_VECTOR_STORE__URL): the embedded store under the "
            "data dir is opened by one process only"
        )
    host = host or settings.server.host
    port = port or settings.server.port
    if settings.uses_sqlite:
        # Migrations run before the app starts, never inside it.
        _run(_upgrade(settings))
    first_key = _run(_bootstrap_admin(settings)) if settings.environment == "development" else None

    def ready(readiness: Readiness) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"{shown}:{port}"
        if readiness.status != "ready":
            # What /ready says: degraded still answers (without the cache, queue or shared limits).
            what = ", ".join(f"{name} {readiness.checks[name]}" for name in readiness.failed)
            err.print(
                f"Lore is {readiness.status} on http://{base}: {what} (GET /ready; the log above says "
                "why; docs/operations.md says what Lore does without each)",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
            return
        if first_key is None:
            err.print(
                "To get an API key: [bold]export LORE_KEY=$(lore keys create --user admin | tail -1)[/] "
                "(or log in: curl -s -X POST " + base + "/v1/auth/token -d username=NAME -d password=...)",
                soft_wrap=True,
            )
        key = first_key or "$LORE_KEY"
        err.print(
            f"Lore is ready on http://{base} (docs at /docs). Try:\n"
            f"  curl -s -X POST {base}/v1/query -H 'content-type: application/json' "
            f'-H "Authorization: Bearer {key}" '
            '-d \'{"question": "How do I ingest documents?"}\'',
            soft_wrap=True,
            markup=False,
            highlight=False,
        )

    from api.ops.logs import configure_logging

    configure_logging()
    # X-Forwarded-For names the client only when a trusted proxy sent it: the login limit is per
    # client address, and uvicorn would otherwise believe the header from 127.0.0.1.
    trusted = settings.server.trusted_proxies
    proxies: dict[str, Any] = {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
    if workers > 1:
        # Each worker process builds its own app (and resources) from the same environment.
        uvicorn.run(
            "cli.main:served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            **proxies,
        )
        return
    uvicorn.run(
        create_app(settings, on_ready=ready, on_failure=_startup_failed),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **proxies,
    )


def served_app() -> Any:
    """The app one of `lore serve --workers N`'s processes builds, logging as `lore serve` does."""
    from api.app import create_app
    from api.ops.logs import configure_logging

    configure_logging()
    return create_app(on_failure=_startup_failed)


def _startup_failed(exc: LoreError) -> NoReturn:
    """End `lore serve` on a Lore error at start-up (a database or Redis that does not answer...).

    uvicorn would log the traceback the app's lifespan raised and "Application startup failed";
    the error says in one line which setting to fix, so that line alone is printed, and the process
    exits with status 2 like every command that cannot start (the resources are closed already).
    """
    import os

    print_error(exc.message)
    sys.stderr.flush()
    os._exit(USAGE)


async def _bootstrap_admin(settings: Settings) -> str | None:
    """On a development install with no users yet, create `admin` and print its credentials once.

    Returns the new admin's API key, or None when users already exist.
    """
    import secrets

    from api.auth import service as auth
    from core.db.engine import open_engine, session_factory

    engine = await open_engine(settings)
    try:
        async with session_factory(engine)() as session:
            if await auth.list_users(session):
                return None
            password = secrets.token_urlsafe(12)
            user = await auth.create_user(session, username="admin", password=password, role="admin")
            key = await auth.create_api_key(
                session, user=user, name="first-admin", prefix=settings.auth.api_key_prefix
            )
            await session.commit()
    finally:
        await engine.dispose()
    err.print(
        "First start (development): created the admin user [bold]admin[/] with\n"
        f"  password: {password}\n  API key:  {key.plaintext}\n"
        "Both are shown only now. More keys: lore keys create --user admin",
        soft_wrap=True,
        highlight=False,
    )
    return key.plaintext


async def _upgrade(settings: Settings) -> str | None:
    from core.db import migrate
    from core.db.engine import create_engine, reaching_database

    engine = create_engine(settings)
    try:
        with reaching_database(settings):
            await migrate.upgrade(engine)
            return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the configured database."""
    revision = _run(_upgrade(get_settings()))
    out.print(f"database at revision {revision}")


@db_app.command("current")
def db_current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless the database is at the latest revision.")
    ] = False,
) -> None:
    """Show the database's migration revision and the latest one."""
    from core.db import migrate
    from core.db.engine import create_engine, reaching_database

    async def main() -> str | None:
        settings = get_settings()
        engine = create_engine(settings)
        try:
            with reaching_database(settings):
                return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    current = _run(main())
    out.print(f"current: {current or 'none'}; latest: {migrate.head_revision()}")
    if check and current != migrate.head_revision():
        raise typer.Exit(1)


def _parse_limits(items: list[str] | None) -> dict[str, float]:
    limits = {}
    for item in items or []:
        metric, sep, value = item.partition("=")
        try:
            limits[metric.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected METRIC=LIMIT, e.g. mrr=0.05")
    return limits


def _print_gates(gates: list[dict[str, Any]]) -> None:
    for gate in gates:
        verdict = "[green]pass[/]" if gate["passed"] else "[bold red]FAIL[/]"
        out.print(f"gate {verdict} {gate['name']}: {gate['message']}", highlight=False)


@eval_app.command("run")
def eval_run(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE.yaml", help="The suite file.")],
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Run directory: records.jsonl, results.json, junit.xml, report.html."),
    ] = Path("eval-out"),
    baseline: Annotated[
        str | None, typer.Option(help="Baseline run (directory or ID) for the suite's regression limits.")
    ] = None,
    max_drop: Annotated[
        list[str] | None,
        typer.Option(help="Regression limit METRIC=LIMIT against the baseline (repeatable)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Run against this Lore server instead of in process.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="LORE_KEY", help="API key or token for --url (default $LORE_KEY).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Run only this many questions (spread evenly).")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Runs of every question (default: the suite's).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Questions in flight (default: the suite's).")
    ] = None,
    judge: Annotated[
        bool | None,
        typer.Option("--judge/--no-judge", help="Switch the LLM judge on or off (default: the suite's)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Discard records of an earlier, unfinished run in --out.")
    ] = False,
) -> None:
    """Run an eval suite; a killed run continues when run again with the same --out.

    Exit code 0 when every gate passes, 1 when a gate fails, 2 on a usage or run error.
    """
    base_settings = get_settings()

    async def main() -> dict[str, Any]:
        from evals import datasets, service
        from evals.runner import RECORDS_FILE
        from evals.suite import load_suite

        suite = load_suite(suite_path, datasets_dir=base_settings.evals.datasets_dir)
        if limit is not None:
            suite.cases = datasets.pick(suite.cases, limit)
        suite.repeats = repeats or suite.repeats
        suite.concurrency = concurrency or suite.concurrency
        if judge is not None:
            suite.judge.enabled = judge
        suite.regression = service.regression_rules(suite.regression, _parse_limits(max_drop))
        if fresh:
            (out_dir / RECORDS_FILE).unlink(missing_ok=True)
        settings = suite.apply(base_settings)
        interactive = sys.stderr.isatty()
        if url is not None:
            with _Bar("questions", enabled=interactive) as bar:
                return await service.run_remote(
                    settings, suite, url=url, token=token, out_dir=out_dir, baseline=baseline, progress=bar
                )
        from core.resources import open_resources

        async with open_resources(
            settings, with_llm=suite.mode == "answer", migrate_sqlite=True
        ) as resources:
            with (
                _Bar("ingest", enabled=interactive) as ingest_bar,
                _Bar("questions", enabled=interactive) as bar,
            ):
                return await service.run_in_process(
                    resources,
                    suite,
                    out_dir=out_dir,
                    baseline=baseline,
                    ingest_progress=ingest_bar,
                    progress=bar,
                )

    results = _run(main())
    summary = results["summary"]
    table = Table(title=f"suite {summary['suite']!r} ({summary['cases']} questions)")
    for column in ("metric", "value", "measured", "not measured"):
        table.add_column(column)
    agreement = ((results.get("judge") or {}).get("calibration") or {}).get("agreement", {})
    for name, value in summary["metrics"].items():
        detail = summary["metric_details"].get(name, {})
        shown = "n/a" if value is None else f"{value:.4f}"
        if name in agreement:
            shown += f" (judge agreement {agreement[name].get('agreement') or 0:.2f})"
        table.add_row(name, shown, str(detail.get("measured", "")), str(detail.get("not_measured", "")))
    out.print(table)
    warning = ((results.get("judge") or {}).get("calibration") or {}).get("warning")
    if warning:
        err.print(f"[bold yellow]judge[/]: {warning}", highlight=False)
    if summary["failed"]:
        err.print(f"[red]{summary['failed']} questions failed[/] (see results.json)")
    _print_gates(results["gates"])
    out.print(f"results: {out_dir / 'results.json'}, {out_dir / 'junit.xml'}, {out_dir / 'report.html'}")
    if not results["passed"]:
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="Baseline run: directory or ID.")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="New run: directory or ID.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.json and comparison.html here.")
    ] = None,
    max_drop: Annotated[
        list[str] | None, typer.Option(help="Regression limit METRIC=LIMIT (default: RUN_B's suite's).")
    ] = None,
) -> None:
    """Compare two runs question by question, regressions first; exit 1 when a regression gate fails."""
    settings = get_settings()
    from evals import reports, service
    from evals.compare import compare
    from evals.suite import Regression

    try:
        a = service.load_run(run_a, runs_dir=settings.eval_runs_dir)
        b = service.load_run(run_b, runs_dir=settings.eval_runs_dir)
    except LoreError as exc:
        raise fail(exc.message) from None
    rules = Regression.model_validate(b.get("suite", {}).get("regression") or {})
    rules = service.regression_rules(rules, _parse_limits(max_drop))
    result = compare(a, b, regression=rules, base_name=run_a)
    table = Table(title=f"{run_a} (A) -> {run_b} (B)")
    for column in ("metric", "A", "B", "B - A"):
        table.add_column(column)
    for name, d in result["metrics"].items():
        row = [("n/a" if d[key] is None else f"{d[key]:.4f}") for key in ("a", "b", "delta")]
        table.add_row(name + (" [red](worse)[/]" if d["worse"] else ""), *row)
    out.print(table)
    out.print(f"{result['regressed']} questions regressed, {result['improved']} improved")
    for q in result["questions"]:
        if not q["regressed"]:
            break
        changes = ", ".join(
            f"{n} {q['deltas'][n]['a']:.2f}->{q['deltas'][n]['b']:.2f}" for n in q["regressed"]
        )
        out.print(f"  [red]regressed[/] {q['question']} ({changes})", highlight=False)
    if not result["gates"]:
        out.print("no regression limits: set regression.max_drop in the suite or pass --max-drop")
    _print_gates(result["gates"])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        reports.write_json(result, out_dir / "comparison.json")
        (out_dir / "comparison.html").write_text(reports.compare_html(result))
        out.print(f"comparison: {out_dir / 'comparison.json'}, {out_dir / 'comparison.html'}")
    if not result["passed"]:
        raise typer.Exit(1)


@eval_app.command("report")
def eval_report(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run directory or ID.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML here (default: RUN/report.html).")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in a web browser.")] = False,
) -> None:
    """Write a run's HTML report again from its results.json (and open it)."""
    from evals import reports, service

    settings = get_settings()
    try:
        results = service.load_run(run, runs_dir=settings.eval_runs_dir)
    except LoreError as exc:
        raise fail(exc.message) from None
    target = out_file or Path(results["run"]["dir"]) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(reports.html_report(results))
    out.print(f"report: {target}")
    if open_it:
        import webbrowser

        webbrowser.open(target.resolve().as_uri())


@eval_app.command("generate")
def eval_generate(
    corpus: Annotated[str, typer.Option(help="Corpus whose chunks the questions come from.")],
    n: Annotated[int, typer.Option("-n", min=1, help="Questions to generate.")] = 50,
    out_file: Annotated[Path, typer.Option("--out", help="JSONL dataset to write.")] = Path(
        "generated.jsonl"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the chunk sample (same seed, same chunks).")] = 0,
) -> None:
    """Generate question and answer pairs from a corpus's chunks with the LLM (source chunk as reference)."""
    settings = get_settings()

    async def main() -> Any:
        from core.resources import open_resources
        from evals.generate import generate_cases

        async with open_resources(settings, migrate_sqlite=True) as resources:
            with _Bar("generate", enabled=sys.stderr.isatty()) as bar:
                bar.start(n)
                return await generate_cases(
                    resources, corpus, n, seed=seed, progress=lambda: bar.advance("", "done", 0)
                )

    generated = _run(main())
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(
        "".join(case.model_dump_json(exclude_defaults=True) + "\n" for case in generated.cases)
    )
    out.print(f"{len(generated.cases)} cases written to {out_file}; {generated.skipped} replies skipped")
    for reason, count in generated.reasons.items():
        err.print(f"  skipped {count}: {reason}", highlight=False)
