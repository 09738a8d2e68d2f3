"""Output moderation through the API: sampled answers are rated after they are sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from api.moderation import QUEUED
from core.components.llm import Message
from core.settings import Settings
from tests.fakes import ScriptedLLM
from tests.served import served_corpus

pytestmark = pytest.mark.models


def scripted(score: str) -> ScriptedLLM:
    """Answers from the source, and gives moderation requests a fixed score."""

    def reply(messages: Sequence[Message]) -> str:
        return score if "content moderator" in messages[0]["content"] else "The Alpha widget is blue [1]."

    return ScriptedLLM(reply)


def moderations(llm: ScriptedLLM) -> int:
    return sum(1 for prompt in llm.prompts if "content moderator" in prompt[0]["content"])


@pytest.fixture
async def lore(tmp_path: Any, user_key: Callable[..., Any]) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    settings = Settings(data_dir=tmp_path / "lore", guardrails={"moderation_sample_rate": 1.0})
    key = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as served:
        yield served


@pytest.mark.parametrize(
    ("score", "verdict", "evicted"), [("Score: 1", "flagged", True), ("5", "passed", False)]
)
async def test_sampled_answers_are_rated_after_they_are_sent(
    lore: tuple[Any, httpx.AsyncClient], score: str, verdict: str, evicted: bool
) -> None:
    app, client = lore
    llm = scripted(score)
    app.state.resources._llm = llm
    body = {"question": "What colour is the Alpha widget?", "corpus": "handbook"}

    first = (await client.post("/v1/query", json=body)).json()
    await app.state.background.drain()

    assert first["guardrails"]["moderation"] == QUEUED and not first["cached"]
    assert moderations(llm) == 1
    assert f'lore_moderation_verdicts_total{{verdict="{verdict}"}} 1.0' in app.state.metrics.render().decode()
    again = (await client.post("/v1/query", json=body)).json()
    # a flagged answer is gone from the cache; a passed one is served from it, not rated again
    assert again["cached"] is not evicted
    await app.state.background.drain()
    assert moderations(llm) == (2 if evicted else 1)


async def test_a_streamed_answer_is_moderated_once_it_ends(lore: tuple[Any, httpx.AsyncClient]) -> None:
    app, client = lore
    llm = scripted("Score: 4")
    app.state.resources._llm = llm
    body = {"question": "What colour is the Alpha widget?", "corpus": "handbook"}
    async with client.stream("POST", "/v1/query/stream", json=body) as response:
        raw = "".join([chunk async for chunk in response.aiter_text()])
    await app.state.background.drain()

    assert QUEUED in raw
    assert moderations(llm) == 1
    assert 'lore_moderation_verdicts_total{verdict="passed"} 1.0' in app.state.metrics.render().decode()
