"""`lore ask`: a question answered in process, streamed to the terminal with its citations."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cli.exits import run
from cli.runtime import err, out
from core.settings import get_settings


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

    result = run(main())
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
