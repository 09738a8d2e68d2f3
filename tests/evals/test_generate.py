"""Synthetic cases: the reply parser by hand, and generation over a real ingested corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.generate import generate_cases, parse_pair, sample_chunks

REPO = Path(__file__).resolve().parents[2]


def test_question_and_answer_are_read_from_the_asked_form() -> None:
    assert parse_pair("Sure!\nQuestion: What do kin drop?\nAnswer: A key.\n\nMore text") == (
        "What do kin drop?",
        "A key.",
    )
    assert parse_pair("question:  Which  port?\n answer: 8000") == ("Which port?", "8000")
    assert parse_pair("What do kin drop? A key.") is None
    assert parse_pair("Question: Not a question\nAnswer: x") is None


@pytest.mark.models
async def test_generated_cases_record_their_source_chunk(
    resources: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.components.llm import Completion
    from core.resources import Resources
    from ingestion.pipeline import ingest_paths

    assert isinstance(resources, Resources)
    await ingest_paths(
        resources,
        [REPO / "data" / "corpus" / "installing.md", REPO / "data" / "corpus" / "api.md"],
        corpus="c",
    )
    chunks = await sample_chunks(resources, "c", 3)
    assert len({c.document_id for c in chunks[:2]}) == 2  # documents take turns

    replies = iter(["Question: Which Python does Lore need?\nAnswer: Python 3.11", "no form here"] * 2)

    async def complete(messages: object, *, max_tokens: int | None = None) -> Completion:
        return Completion(text=next(replies), model="scripted")

    # the LLM is scripted: what is under test is sampling, parsing and the recorded reference
    monkeypatch.setattr(resources.llm, "complete", complete)
    generated = await generate_cases(resources, "c", 2)
    assert generated.skipped == 1
    [case] = generated.cases
    assert case.question == "Which Python does Lore need?"
    assert case.reference_contexts[0] in {c.text for c in chunks}
    assert case.reference_documents[0].endswith(".md")
