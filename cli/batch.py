"""`lore batch ...`: a JSONL file of questions answered in process against the local data dir,
resumably (see docs/api.md#batches); the same tables and service as POST /v1/batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.exits import run
from cli.runtime import err, out
from core.settings import Settings, get_settings

batch_app = typer.Typer(help="Batches of questions: submit, resume, status, output.", no_args_is_help=True)


async def _status(resources: Any, batch_id: str) -> dict[str, Any]:
    from api.batches import service
    from api.batches.schemas import BatchPublic

    async with resources.sessions() as session:
        row = await service.get_batch(session, batch_id)
        counts = await service.line_counts(session, [row.id])
    return BatchPublic.from_row(row, counts[row.id]).model_dump(mode="json")


async def _run(settings: Settings, batch_id: str, resources: Any) -> dict[str, Any]:
    from api.batches import service

    done = 0

    def counted() -> None:
        nonlocal done
        done += 1
        if done % 10 == 0:
            err.print(f"batch {batch_id}: {done} more line(s) answered")

    await service.run_batch(resources, batch_id, concurrency=settings.batch.concurrency, on_line=counted)
    return await _status(resources, batch_id)


@batch_app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(help="The JSONL file of questions.", exists=True, dir_okay=False)],
    corpus: Annotated[str | None, typer.Option(help="Corpus of lines that name none.")] = None,
    batch_id: Annotated[
        str | None, typer.Option("--id", help="The batch's ID; an unfinished batch of this ID is resumed.")
    ] = None,
) -> None:
    """Record the batch and answer it here; prints its ID first, then its status as JSON."""
    settings = get_settings()

    async def main() -> dict[str, Any]:
        from api.batches import service
        from api.batches.parse import parse_batch
        from core.db.models import BatchRow
        from core.resources import open_resources

        async with open_resources(settings, migrate_sqlite=True) as resources:
            async with resources.sessions() as session:
                existing = None if batch_id is None else await session.get(BatchRow, batch_id)
                if existing is None:
                    lines = parse_batch(file.read_text(), corpus=corpus, max_lines=settings.batch.max_lines)
                    row = await service.create_batch(
                        session, lines=lines, user_id=None, rate_key=None, batch_id=batch_id
                    )
                    chosen = row.id
                else:
                    chosen = existing.id
            out.print(chosen, highlight=False)
            return await _run(settings, chosen, resources)

    out.print_json(json.dumps(run(main())))


@batch_app.command("resume")
def resume(batch_id: Annotated[str, typer.Argument(help="The batch's ID.")]) -> None:
    """Answer the lines of an unfinished batch that have no result yet."""
    settings = get_settings()

    async def main() -> dict[str, Any]:
        from core.resources import open_resources

        async with open_resources(settings, migrate_sqlite=True) as resources:
            return await _run(settings, batch_id, resources)

    out.print_json(json.dumps(run(main())))


@batch_app.command("status")
def status(batch_id: Annotated[str, typer.Argument(help="The batch's ID.")]) -> None:
    """The batch's state and counts, as JSON."""
    settings = get_settings()

    async def main() -> dict[str, Any]:
        from core.resources import open_resources

        async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
            return await _status(resources, batch_id)

    out.print_json(json.dumps(run(main())))


@batch_app.command("output")
def output(batch_id: Annotated[str, typer.Argument(help="The batch's ID.")]) -> None:
    """The results as JSONL, one line per input line, in input order."""
    settings = get_settings()

    async def main() -> list[dict[str, Any]]:
        from api.batches import service
        from core.resources import open_resources

        async with (
            open_resources(settings, with_llm=False, migrate_sqlite=True) as resources,
            resources.sessions() as session,
        ):
            return await service.output(session, await service.get_batch(session, batch_id))

    for result in run(main()):
        print(json.dumps(result, ensure_ascii=False))
