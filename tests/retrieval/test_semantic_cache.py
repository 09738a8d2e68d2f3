"""The semantic answer cache: close questions hit within one scope and one corpus version only.

The LLM is a fake that names the question it answers, so a hit shows whose answer came back;
the embedder is the real default model, since the threshold is measured on it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.components.llm import Message
from core.resources import Resources, open_resources
from core.settings import Settings
from ingestion.pipeline import ingest_paths
from retrieval import service
from tests.fakes import ScriptedLLM

QUESTION = "How do I rotate the JWT signing key?"
PARAPHRASE = "How can I rotate the JWT signing key?"
NEAR_MISS = "How do I rotate the API key?"


def _echo(messages: Sequence[Message]) -> str:
    prompt = messages[-1]["content"].rsplit("Question:", 1)[-1]
    question = prompt.split("\n\nSources:", 1)[0].strip()
    return f"answer to: {question} [1]"


def EchoLLM() -> ScriptedLLM:
    """Answers "answer to: <question>" and counts its calls; the model name is unique per test."""
    return ScriptedLLM(_echo, model=f"echo-{uuid.uuid4().hex[:8]}")


Opener = Callable[..., Any]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keys.md").write_text(
        "# Keys\n\nRotate the JWT signing key with `lore keys rotate --jwt`.\n\n"
        "Rotate an API key with `lore users rotate-key NAME`.\n"
    )
    return folder


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens resources with the echo LLM on their own data dir; closes them after the test."""
    stacks: list[Any] = []

    async def open_one(name: str = "lore", llm: ScriptedLLM | None = None, **cache: Any) -> Resources:
        # The echo answer adds only the word "answer" to the question: the citation check
        # (tested in test_grounding.py) would rightly refuse it, so it is off here.
        settings = Settings(data_dir=tmp_path / name, cache=cache, retrieval={"citation_min_support": 0.0})
        context = open_resources(settings, with_llm=False, migrate_sqlite=True)
        resources = await context.__aenter__()
        stacks.append(context)
        resources._llm = llm or EchoLLM()
        return resources

    yield open_one
    for context in reversed(stacks):
        await context.__aexit__(None, None, None)


def _llm(resources: Resources) -> ScriptedLLM:
    assert isinstance(resources._llm, ScriptedLLM)
    return resources._llm


async def test_a_paraphrase_gets_the_earlier_answer_marked_semantic(opened: Opener, docs: Path) -> None:
    resources = await opened()
    await ingest_paths(resources, [docs], corpus="c")
    first = await service.answer(resources, service.Ask(QUESTION))
    again = await service.answer(resources, service.Ask(PARAPHRASE))
    assert not first.cached and first.cache_kind is None
    assert again.cached and again.cache_kind == "semantic" and again.answer == first.answer
    assert again.cache_similarity is not None
    assert again.cache_similarity >= resources.settings.cache.semantic_threshold
    assert (again.citations, again.model) == (first.citations, first.model)
    exact = await service.answer(resources, service.Ask(QUESTION))
    assert exact.cache_kind == "exact" and exact.cache_similarity is None
    events = [e async for e in await service.stream_answer(resources, service.Ask(PARAPHRASE))]
    done = events[-1]
    assert isinstance(done, service.DoneEvent)
    assert done.answer.cached and done.answer.cache_kind == "semantic"
    assert _llm(resources).calls == 1


async def test_a_near_miss_on_the_same_topic_is_answered_afresh(opened: Opener, docs: Path) -> None:
    resources = await opened()
    await ingest_paths(resources, [docs], corpus="c")
    await service.answer(resources, service.Ask(QUESTION))
    other = await service.answer(resources, service.Ask(NEAR_MISS))
    assert not other.cached and other.answer.startswith(f"answer to: {NEAR_MISS}")


async def test_never_served_across_access_scopes(opened: Opener, docs: Path) -> None:
    resources = await opened()
    for corpus in ("a", "b", "c"):
        await ingest_paths(resources, [docs], corpus=corpus)
    alice = frozenset({"a"})
    await service.answer(resources, service.Ask(QUESTION, allowed_corpora=alice))
    # Readers of other corpora, or of a wider set, asking the same question or a paraphrase: no hit.
    # Each scope asks once, so no scope can hit an answer of its own.
    for scope, question in (({"b"}, QUESTION), ({"c"}, PARAPHRASE), ({"a", "b"}, PARAPHRASE)):
        result = await service.answer(resources, service.Ask(question, allowed_corpora=frozenset(scope)))
        assert not result.cached, (scope, question)
        assert result.answer.startswith(f"answer to: {question}")
    # Within the first scope the paraphrase does hit, so the misses above are the scope's doing.
    hit = await service.answer(resources, service.Ask(PARAPHRASE, allowed_corpora=alice))
    assert hit.cache_kind == "semantic"
    assert _llm(resources).calls == 4


async def test_never_served_after_the_corpus_changes(opened: Opener, docs: Path) -> None:
    resources = await opened()
    await ingest_paths(resources, [docs], corpus="c")
    await service.answer(resources, service.Ask(QUESTION, corpus="c"))
    assert (await service.answer(resources, service.Ask(PARAPHRASE, corpus="c"))).cached
    (docs / "keys.md").write_text("# Keys\n\nRotate the JWT signing key with `lore jwt rotate`.\n")
    await ingest_paths(resources, [docs], corpus="c")
    after = await service.answer(resources, service.Ask(PARAPHRASE, corpus="c"))
    assert not after.cached and after.answer.startswith(f"answer to: {PARAPHRASE}")
    # Adding a document changes the corpus too.
    (docs / "more.md").write_text("# More\n\nKeys can also be rotated from the admin page.\n")
    await ingest_paths(resources, [docs], corpus="c")
    added = await service.answer(resources, service.Ask(QUESTION, corpus="c"))
    assert not added.cached and _llm(resources).calls == 3


async def test_entries_expire_after_the_ttl(opened: Opener, docs: Path) -> None:
    # Long enough for the hit below on a loaded machine, short enough to wait out.
    resources = await opened(default_ttl_s=2.0)
    await ingest_paths(resources, [docs], corpus="c")
    await service.answer(resources, service.Ask(QUESTION))
    assert (await service.answer(resources, service.Ask(PARAPHRASE))).cached
    await asyncio.sleep(2.1)
    assert not (await service.answer(resources, service.Ask(PARAPHRASE))).cached


async def test_switched_off_only_exact_repeats_hit(opened: Opener, docs: Path) -> None:
    resources = await opened(semantic=False)
    assert resources.semantic is None
    await ingest_paths(resources, [docs], corpus="c")
    await service.answer(resources, service.Ask(QUESTION))
    assert not (await service.answer(resources, service.Ask(PARAPHRASE))).cached
    assert (await service.answer(resources, service.Ask(QUESTION))).cache_kind == "exact"


@pytest.mark.redis
async def test_two_processes_share_entries_through_redis(opened: Opener, docs: Path, redis_url: str) -> None:
    # One LLM (one model name, unique to this test) for both, as two API processes would share.
    llm = EchoLLM()
    first = await opened("one", llm, redis_url=redis_url, default_ttl_s=60)
    second = await opened("two", llm, redis_url=redis_url, default_ttl_s=60)
    for resources in (first, second):
        await ingest_paths(resources, [docs], corpus="c")
    made = await service.answer(first, service.Ask(QUESTION))
    served = await service.answer(second, service.Ask(PARAPHRASE))
    assert served.cache_kind == "semantic" and served.answer == made.answer and llm.calls == 1
