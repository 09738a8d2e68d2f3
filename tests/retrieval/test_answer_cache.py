"""The exact-repeat answer cache: keyed by scope and corpus versions, invalidated by re-ingestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.resources import Resources
from core.types import Answer, Citation, SearchHit
from ingestion.pipeline import ingest_paths
from retrieval import answer_cache, service

KEY_ARGS = {"k": 4, "mode": "hybrid", "embedding_model": "e", "llm_model": "m", "generation": {"t": 0}}


def test_key_ignores_case_and_spacing_but_not_scope_or_versions() -> None:
    base = answer_cache.answer_key("What is Lore?", corpora={"a": 1}, **KEY_ARGS)  # type: ignore[arg-type]
    assert base == answer_cache.answer_key("  what IS   lore? ", corpora={"a": 1}, **KEY_ARGS)  # type: ignore[arg-type]
    assert base != answer_cache.answer_key("What is Lore?", corpora={"a": 2}, **KEY_ARGS)  # type: ignore[arg-type]
    assert base != answer_cache.answer_key("What is Lore?", corpora={"a": 1, "b": 1}, **KEY_ARGS)  # type: ignore[arg-type]
    assert base != answer_cache.answer_key("What is Lore?", corpora={"a": 1}, **{**KEY_ARGS, "k": 5})  # type: ignore[arg-type]


def test_answers_round_trip_and_come_back_marked_cached() -> None:
    hit = SearchHit(1.0, "c", "d", "corp", "text", "/s.md", "T", 2, ("H",))
    original = Answer("A [1]", [Citation(1, "d", "T", "/s.md", 2, "text")], [hit], "m", usage={"x": 1})
    loaded = answer_cache.load_answer(answer_cache.dump_answer(original))
    assert loaded.cached and not original.cached
    assert (loaded.answer, loaded.citations, loaded.sources, loaded.model) == (
        original.answer,
        original.citations,
        original.sources,
        original.model,
    )


async def test_repeat_is_served_from_cache_until_the_corpus_changes(
    resources: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "w.md").write_text("# Widgets\n\nThe Alpha widget is blue.\n")
    await ingest_paths(resources, [docs], corpus="c")

    first = await service.answer(resources, service.Ask("What colour is the Alpha widget?", corpus="c"))
    again = await service.answer(resources, service.Ask("what colour is the alpha widget? ", corpus="c"))
    other_scope = await service.answer(
        resources, service.Ask("What colour is the Alpha widget?", corpus=None)
    )
    assert not first.cached and again.cached and again.answer == first.answer
    # same corpora but asked as "every corpus": the scope resolves to the same set, so it may hit;
    # a different set of corpora must not
    await ingest_paths(resources, [docs], corpus="other")
    wider = await service.answer(resources, service.Ask("What colour is the Alpha widget?", corpus=None))
    assert not wider.cached
    assert other_scope.answer == first.answer

    (docs / "w.md").write_text("# Widgets\n\nThe Alpha widget is now green.\n")
    await ingest_paths(resources, [docs], corpus="c")
    after_change = await service.answer(
        resources, service.Ask("What colour is the Alpha widget?", corpus="c")
    )
    assert not after_change.cached
    uncached = await service.answer(
        resources, service.Ask("What colour is the Alpha widget?", corpus="c", use_cache=False)
    )
    assert not uncached.cached


async def test_scope_limits_the_corpora_searched_and_hides_the_rest(
    resources: Resources, tmp_path: Path
) -> None:
    from core.errors import NotFoundError

    for name, text in (("open", "Open widgets are red."), ("secret", "Secret widgets are violet.")):
        docs = tmp_path / name
        docs.mkdir()
        (docs / f"{name}.md").write_text(f"# {name}\n\n{text}\n")
        await ingest_paths(resources, [docs], corpus=name)
    scoped = service.Ask("What colour are the widgets?", allowed_corpora=frozenset({"open"}))
    result = await service.answer(resources, scoped)
    assert result.sources and {h.corpus for h in result.sources} == {"open"}
    with pytest.raises(NotFoundError, match="no corpus named 'secret'"):
        await service.answer(
            resources, service.Ask("x", corpus="secret", allowed_corpora=frozenset({"open"}))
        )
    nothing = await service.answer(resources, service.Ask("What colour?", allowed_corpora=frozenset()))
    assert nothing.sources == [] and nothing.citations == []
