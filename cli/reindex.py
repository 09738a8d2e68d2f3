"""`lore reindex`: a corpus re-embedded into a new collection, here or through the queue's workers."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.exits import run
from cli.runtime import Bar, Follow, enqueue, err, out
from core.settings import get_settings


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
    follow: Follow = None,
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
        enqueue(settings, spec, as_json=as_json, follow=follow)
        return

    async def main() -> dict[str, Any]:
        from core.resources import open_resources
        from ingestion.reindex import reindex_corpus

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            with Bar("reindex", enabled=not as_json and sys.stderr.isatty()) as bar:
                summary = await reindex_corpus(
                    resources,
                    corpus,
                    model=model,
                    chunk_tokens=chunk_tokens,
                    chunk_overlap_tokens=chunk_overlap,
                    progress=bar,
                )
            return summary.as_dict()

    result = run(main())
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
