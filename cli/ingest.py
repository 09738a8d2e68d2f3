"""`lore ingest` and `lore worker`: files into a corpus, here or through the queue's workers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.exits import FAILED, run
from cli.runtime import Bar, Follow, enqueue, err, print_summary
from core.settings import get_settings


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
    follow: Follow = None,
) -> None:
    """Ingest files (PDF, Office, CSV, email, Markdown, text, HTML, images) into a corpus, but unchanged ones.

    Formats, by suffix: PDF (.pdf), Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV (.csv),
    email (.eml), Markdown (.md, .markdown), HTML (.html, .htm), text (.txt, .text) and images,
    read by OCR (.png, .jpg, .jpeg, .tif, .tiff; scanned PDF pages too: ingestion.ocr). In a
    directory, files of other types are passed over; a file named directly that Lore does not read
    fails with its reason.

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
        enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion import jobs
        from ingestion.pipeline import ingest_paths

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            with Bar("ingest", enabled=not as_json and sys.stderr.isatty()) as bar:
                summary = await ingest_paths(
                    resources, paths, corpus=corpus or settings.default_corpus, progress=bar
                )
            result = summary.as_dict()
            if summary.documents_failed:
                async with resources.sessions() as session:
                    outcomes = await jobs.document_outcomes(session, job_id=summary.job_id)
                result["failures"] = jobs.failures_of(outcomes)
            return result

    result = run(main())
    if as_json:
        print(json.dumps(result))
    else:
        print_summary(result)
        for failure in result.get("failures", []):
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if result["documents_failed"]:
        raise typer.Exit(FAILED)


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

        raise typer.Exit(0 if run(worker_is_healthy(settings.queue)) else 1)
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

    run(main())
