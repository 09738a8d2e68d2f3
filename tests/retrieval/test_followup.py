"""Follow-up questions are made standalone before retrieval: by the LLM, or by the cheap fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.components.llm import Message
from core.resources import Resources
from ingestion.pipeline import ingest_paths
from retrieval import service
from retrieval.followup import concatenated, standalone_question
from tests.fakes import ScriptedLLM

HISTORY: list[Message] = [
    {"role": "user", "content": "What is the Alpha widget made of?"},
    {"role": "assistant", "content": "It is made of anodised aluminium [1]."},
]


async def test_a_first_question_is_searched_as_asked() -> None:
    llm = ScriptedLLM("never used")
    assert await standalone_question(llm, "How heavy is it?", [], max_chars=2000) == (
        "How heavy is it?",
        "as asked",
    )
    assert llm.prompts == []


async def test_the_llm_rewrites_a_follow_up_with_the_conversation_in_view() -> None:
    llm = ScriptedLLM('"How much does the Alpha widget weigh?"')
    query, how = await standalone_question(llm, "How heavy is it?", HISTORY, max_chars=2000)
    assert (query, how) == ("How much does the Alpha widget weigh?", "rewritten")
    prompt = llm.prompts[0][-1]["content"]
    assert "Alpha widget made of" in prompt and prompt.endswith("Last question: How heavy is it?")


async def test_an_unusable_rewrite_or_a_failed_llm_falls_back_to_the_conversation_words() -> None:
    rambling = "The Alpha widget\nis a fine product. " * 40
    for llm in (ScriptedLLM(rambling), ScriptedLLM(""), ScriptedLLM(None), None):
        query, how = await standalone_question(llm, "How heavy is it?", HISTORY, max_chars=2000)
        assert how == "concatenated"
        assert query == "What is the Alpha widget made of? How heavy is it?"


def test_the_fallback_keeps_the_last_user_turns_within_the_limit() -> None:
    turns: list[Message] = [{"role": "user", "content": f"question {i}"} for i in range(5)]
    assert concatenated("now?", turns, max_chars=2000) == "question 3 question 4 now?"
    assert concatenated("now?", turns, max_chars=15) == "question 4 now?"


async def test_the_answer_path_searches_with_the_standalone_question(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "alpha.md").write_text("# Alpha\n\nThe Alpha widget is made of aluminium and weighs 3 grams.\n")
    await ingest_paths(resources, [docs], corpus="followups")
    searched: list[str] = []
    real_search = service.search_targets

    async def recording_search(res: Resources, question: str, **kwargs: Any) -> Any:
        searched.append(question)
        return await real_search(res, question, **kwargs)

    monkeypatch.setattr(service, "search_targets", recording_search)
    monkeypatch.setattr(resources.settings.retrieval, "followups", "concatenate")
    ask = service.Ask("How heavy is it?", corpus="followups", history=tuple(HISTORY), use_cache=False)

    prepared = await service._prepare(resources, ask, {})

    assert searched == ["What is the Alpha widget made of? How heavy is it?"]
    assert prepared.hits and "Alpha" in prepared.hits[0].text
    monkeypatch.setattr(resources.settings.retrieval, "followups", "off")
    await service._prepare(resources, ask, {})
    assert searched[-1] == "How heavy is it?"


async def test_a_semantic_cache_miss_embeds_the_question_once(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gears.md").write_text("# Gears\n\nBevel gears mesh at right angles.\n")
    await ingest_paths(resources, [docs], corpus="embed-once")
    assert resources.semantic is not None
    calls: list[str] = []
    real = resources.embedder.embed_query

    async def counting(text: str) -> list[float]:
        calls.append(text)
        return await real(text)

    monkeypatch.setattr(resources.embedder, "embed_query", counting)
    prepared = await service._prepare(
        resources, service.Ask("How do bevel gears mesh?", corpus="embed-once"), {}
    )

    assert prepared.hits and prepared.semantic is not None
    assert calls == ["How do bevel gears mesh?"]
