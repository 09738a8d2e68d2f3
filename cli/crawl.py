"""`lore crawl`: web sites into a corpus, here or through the queue's workers."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from cli.exits import FAILED, run
from cli.runtime import CrawlBar, Follow, enqueue, err, out, print_summary
from core.settings import get_settings


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
    follow: Follow = None,
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
        enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion.crawl import crawl as run_crawl

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            bar = CrawlBar(enabled=not as_json and sys.stderr.isatty())
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

    result = run(main())
    if as_json:
        print(json.dumps(result))
    else:
        print_summary(result, verb="crawled")
        if result["skipped"]:
            out.print("skipped: " + ", ".join(f"{n} {why}" for why, n in result["skipped"].items()))
        for gone in result["gone"]:
            out.print(f"[yellow]gone[/] {gone['url']}: {gone['reason']}", highlight=False)
        for failure in result["failures"]:
            err.print(f"[red]failed[/] {failure['source']}: {failure['error']}", highlight=False)
    if result["documents_failed"]:
        raise typer.Exit(FAILED)
