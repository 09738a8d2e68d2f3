"""Grounded answers: each sentence verified against its sources, collected or streamed, and honest refusal.

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


async def test_an_unsupported_sentence_is_dropped_and_its_citation_with_it(corpus: Resources) -> None:
    reply = "The warranty lasts two years from purchase [1]. It covers dragons on Mars [2]."
    _use(corpus, ScriptedLLM(reply))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert not result.refused
    assert result.answer == "The warranty lasts two years from purchase [1]."
    assert [c.n for c in result.citations] == [1]
    assert [(u.sentence, u.reason) for u in result.unsupported_sentences] == [
        ("It covers dragons on Mars [2].", "`Mars` is in no source")
    ]
    assert result.guardrails["groundedness"] == "1 of 2 sentence(s) supported, 1 dropped"


async def test_an_answer_with_no_supported_sentence_is_refused(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The warranty is 500 years and includes free spaceships [1]."))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused
    assert result.answer == service.UNSUPPORTED_ANSWER
    assert result.citations == [] and [c.n for c in result.unsupported_citations] == [1]
    assert result.unsupported_sentences[0].reason == "`500 years` is in no source"


async def test_the_model_saying_the_sources_lack_the_answer_is_a_refusal(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The sources do not contain the warranty's length for the Alpha widget [1]."))
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused


async def test_mark_delivers_an_unsupported_sentence_marked_and_keep_as_written(corpus: Resources) -> None:
    reply = "The warranty lasts two years from purchase [1]. It covers dragons on Mars [1]."
    _use(corpus, ScriptedLLM(reply))
    corpus.settings.answer.unsupported = "mark"
    marked = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert marked.answer.endswith("It covers dragons on Mars [unverified].")
    corpus.settings.answer.unsupported = "keep"
    kept = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert kept.answer == reply and len(kept.unsupported_sentences) == 1
    assert "1 kept unverified" in kept.guardrails["groundedness"]


async def test_a_stream_sends_only_verified_sentences_and_a_removal_for_the_others(corpus: Resources) -> None:
    reply = (
        "The warranty lasts two years from purchase [1]. It covers dragons on Mars [1]. "
        "Returns need a receipt."
    )
    _use(corpus, ScriptedLLM(reply))
    events = [e async for e in await service.stream_answer(corpus, service.Ask(QUESTION, corpus="c"))]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TokenEvent", "SentenceRemovedEvent", "TokenEvent", "CitationsEvent", "DoneEvent"]
    tokens = [e.text for e in events if isinstance(e, service.TokenEvent)]
    # each kept sentence cites the source that holds it: the returns passage is a chunk of its own
    assert tokens[0] == "The warranty lasts two years from purchase [1]."
    assert tokens[1].startswith(" Returns need a receipt [") and len(tokens) == 2
    removed = events[1]
    assert isinstance(removed, service.SentenceRemovedEvent)
    assert (removed.sentence, removed.reason) == ("It covers dragons on Mars [1].", "`Mars` is in no source")
    done = events[-1]
    assert isinstance(done, service.DoneEvent) and done.answer.answer == "".join(tokens)
    assert "first_token_ms" in done.answer.timings and done.answer.guardrails["groundedness"]
    # the collected answer is the stream gathered: the repeat is its cached copy, verdicts and all
    again = await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    assert again.cached and again.answer == done.answer.answer
    assert again.unsupported_sentences == done.answer.unsupported_sentences
    assert again.guardrails["groundedness"] == "2 of 3 sentence(s) supported, 1 dropped"


async def test_a_cache_hit_keeps_its_per_stage_timings(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The warranty lasts two years from purchase [1]."))
    await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    events = [e async for e in await service.stream_answer(corpus, service.Ask(QUESTION, corpus="c"))]
    done = events[-1]
    assert isinstance(done, service.DoneEvent) and done.answer.cached
    assert "total_ms" in done.answer.timings


async def test_low_retrieval_confidence_refuses_without_asking_the_llm(corpus: Resources) -> None:
    llm = ScriptedLLM("never used")
    _use(corpus, llm)
    corpus.settings.retrieval.min_confidence = 0.99
    result = await service.answer(corpus, service.Ask(QUESTION, corpus="c", use_cache=False))
    assert result.refused and result.answer == service.LOW_CONFIDENCE_ANSWER
    assert llm.calls == 0
    assert result.sources, "the passages found are still shown"
    assert "below 0.99" in result.guardrails["retrieval_confidence"]


async def test_a_refused_stream_shows_nothing_of_its_draft(corpus: Resources) -> None:
    _use(corpus, ScriptedLLM("The warranty is 500 years and includes free spaceships [1]."))
    events = [e async for e in await service.stream_answer(corpus, service.Ask(QUESTION, corpus="c"))]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SentenceRemovedEvent", "RefusalEvent", "CitationsEvent", "DoneEvent"]
    refusal, citations, done = events[-3:]
    assert isinstance(refusal, service.RefusalEvent) and refusal.text == service.UNSUPPORTED_ANSWER
    assert isinstance(citations, service.CitationsEvent) and citations.citations == []
    assert isinstance(done, service.DoneEvent) and done.answer.refused
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
    assert isinstance(done, service.DoneEvent) and done.answer.cached and done.answer.refused
    assert llm.calls == 0

    # A new document bumps the corpus's version: the refusal is not served again.
    more = tmp_path / "more"
    more.mkdir()
    (more / "care.md").write_text("# Care\n\nClean the Alpha widget with a dry cloth.\n")
    await ingest_paths(corpus, [more], corpus="c")
    after = await service.answer(corpus, service.Ask(QUESTION, corpus="c"))
    assert after.refused and not after.cached
