"""Grounded answers: citations checked against their sources, and honest refusal.

The LLM is scripted, so each test knows exactly what the model "wrote"; the embedder is the real
default model, since the confidence threshold is measured on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.components.llm import LLM
from core.resources import Resources
from ingestion.pipeline import ingest_paths
from retrieval import service
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.models

QUESTION = "How long does the Alpha widget warranty last?"


@pytest.fixture
async def corpus(resources: Resources, tmp_path: Path) -> Resources:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text(
        "# Warranty\n\nThe Alpha widget warranty lasts two years from the date of purchase.\n\n"
        "## Returns\n\nReturns are accepted within thirty days with a receipt.\n"
    )
    await ingest_paths(resources, [docs], corpus="c")
    return resources


def _use(resources: Resources, llm: LLM) -> None:
    resources._llm = llm


async def test_supported_citations_are_kept_and_unsupported_ones_dropped(corpus: Resources) -> None:
    reply = "The warranty lasts two years from purchase [1]. It covers dragons on Mars [2]."
    _use(corpus, ScriptedLLM(reply))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert not result.refused
    assert [c.n for c in result.citations] == [1]
    assert [c.n for c in result.unsupported_citations] == [2]
    assert result.guardrails["groundedness"] == "1 of 2 citation(s) supported"


async def test_an_answer_with_no_supported_citation_is_refused(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The warranty is five centuries and includes free spaceships [1]."))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused
    assert result.answer == service.UNSUPPORTED_ANSWER
    assert result.citations == [] and [c.n for c in result.unsupported_citations] == [1]


async def test_the_model_saying_the_sources_lack_the_answer_is_a_refusal(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The sources do not contain the warranty's length for the Alpha widget [1]."))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused


async def test_low_retrieval_confidence_refuses_without_asking_the_llm(corpus: Resources) -> None:
    llm = ScriptedLLM("never used")
    _use(corpus, llm)
    corpus.settings.retrieval.min_confidence = 0.99
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused and result.answer == service.LOW_CONFIDENCE_ANSWER
    assert llm.calls == 0
    assert result.sources, "the passages found are still shown"
    assert "below 0.99" in result.guardrails["retrieval_confidence"]


async def test_a_refused_stream_withdraws_its_draft(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The warranty is five centuries and includes free spaceships [1]."))
    events = [e async for e in await service.stream_answer(corpus, service.Ask(QUESTION, corpus="c"))]
    kinds = [type(e).__name__ for e in events]
    assert kinds[-3:] == ["RefusalEvent", "CitationsEvent", "DoneEvent"]
    refusal, citations, done = events[-3:]
    assert isinstance(refusal, service.RefusalEvent) and refusal.text == service.UNSUPPORTED_ANSWER
    assert isinstance(citations, service.CitationsEvent) and citations.citations == []
    assert isinstance(done, service.DoneEvent) and done.refused
    # the refusal is what the cache keeps, so a repeat is refused too, at once
    again = await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    assert again.cached and again.refused and again.answer == service.UNSUPPORTED_ANSWER


async def test_a_low_confidence_refusal_is_cached_until_the_corpus_changes(
    corpus: Resources, tmp_path: Path
) -> None:
    llm = ScriptedLLM("The Alpha widget warranty lasts two years from the date of purchase [1].")
    _use(corpus, llm)
    corpus.settings.retrieval.min_confidence = 0.99
    first = await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    assert first.refused and not first.cached
    # Streamed or not, the repeat is the cached refusal: no search, no LLM.
    events = [e async for e in await service.stream_answer(corpus, service.Ask(QUESTION, corpus="c"))]
    done = events[-1]
    assert isinstance(done, service.DoneEvent) and done.cached and done.refused
    assert llm.calls == 0

    # A new document bumps the corpus's version: the refusal is not served again.
    more = tmp_path / "more"
    more.mkdir()
    (more / "care.md").write_text("# Care\n\nClean the Alpha widget with a dry cloth.\n")
    await ingest_paths(corpus, [more], corpus="c")
    after = await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    assert after.refused and not after.cached
