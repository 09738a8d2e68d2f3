"""The HTTP API driven through httpx against the real app with its lifespan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import RetrievalSettings, Settings
from tests.served import served_corpus

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
async def client(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path_factory.mktemp("api")
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text(
        "# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n\n"
        "## Care\n\nClean widgets with a dry cloth once a week.\n"
    )
    settings = Settings(data_dir=root / "lore")
    key = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as (app, client):
        client.app = app  # type: ignore[attr-defined]  # for tests that script the LLM
        yield client


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_query_returns_answer_with_citations_and_timings(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/query", json={"question": "What colour is the Alpha widget?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip()
    assert body["citations"], body
    citation = body["citations"][0]
    assert set(citation) == {"n", "document_id", "title", "source", "page", "text", "location", "score"}
    assert Path(citation["source"]).name == "widgets.md"
    assert body["timings"]["total_ms"] > 0
    assert body["refused"] is False
    assert body["guardrails"]["question_injection"] == "passed"
    assert body["guardrails"]["source_injection"] == "passed"
    threshold = RetrievalSettings().min_confidence
    assert body["guardrails"]["retrieval_confidence"].endswith(f"at or above {threshold}")
    assert body["guardrails"]["groundedness"].startswith(f"{len(body['citations'])} of ")


async def test_a_close_question_is_answered_from_the_cache_and_says_so(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/query", json={"question": "What colour is the Alpha widget?"})
    close = await client.post("/v1/query", json={"question": "What is the colour of the Alpha widget?"})
    assert close.status_code == 200, close.text
    body = close.json()
    assert body["cached"] and body["cache_kind"] == "semantic"
    assert body["cache_similarity"] >= 0.9 and body["answer"] == first.json()["answer"]


def parse_sse(raw: str) -> list[tuple[str, object]]:
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_stream_sends_tokens_then_citations_then_done(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST",
        "/v1/query/stream",
        json={"question": "How much does the Alpha widget weigh?", "corpus": "handbook"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join([chunk async for chunk in response.aiter_text()])
    events = parse_sse(raw)
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["citations", "done"]
    assert set(kinds) <= {"token", "sentence_removed", "refusal", "citations", "done"}, raw
    citations, done = events[-2][1], events[-1][1]
    assert isinstance(citations, list) and isinstance(done, dict)
    assert "first_token_ms" in done["timings"]
    if "refusal" in kinds:
        # no sentence of the 135M model's draft was supported: refused, right before citations
        assert kinds[-3] == "refusal" and citations == [] and done["refused"] is True
    else:
        assert citations and done["refused"] is False


async def test_stream_removes_an_unsupported_sentence_and_done_carries_the_verified_answer(
    client: httpx.AsyncClient,
) -> None:
    from tests.fakes import ScriptedLLM

    resources = client.app.state.resources  # type: ignore[attr-defined]
    original = resources._llm
    reply = "The Alpha widget is blue [1]. Pass --print-table to weigh it [1]."
    resources._llm = ScriptedLLM(reply)
    try:
        async with client.stream(
            "POST", "/v1/query/stream", json={"question": "Which colour is the scripted Alpha widget?"}
        ) as response:
            raw = "".join([chunk async for chunk in response.aiter_text()])
    finally:
        resources._llm = original
    events = parse_sse(raw)
    assert [kind for kind, _ in events] == ["token", "sentence_removed", "citations", "done"], raw
    assert events[0][1] == "The Alpha widget is blue [1]."
    assert events[1][1] == {
        "sentence": "Pass --print-table to weigh it [1].",
        "reason": "`--print-table` is in no source",
    }
    done = events[-1][1]
    assert isinstance(done, dict) and done["answer"] == "The Alpha widget is blue [1]."
    assert done["unsupported_sentences"] == [events[1][1]] and done["refused"] is False


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/query", {"question": "x", "corpus": "missing"}, 404, "not_found"),
        ("/v1/query/stream", {"question": "x", "corpus": "missing"}, 404, "not_found"),
        ("/v1/query", {"question": ""}, 422, "invalid_input"),
        ("/v1/query", {"question": "x", "k": 0}, 422, "invalid_input"),
        ("/v1/query", {"question": "   "}, 422, "invalid_input"),
        ("/v1/nothing-here", {}, 404, "not_found"),
    ],
)
async def test_errors_share_one_json_shape(
    client: httpx.AsyncClient, path: str, body: dict[str, object], status: int, code: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status
    payload = response.json()
    assert set(payload) == {"error"}
    assert payload["error"]["code"] == code and payload["error"]["message"]


async def test_openapi_documents_the_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/v1/query", "/v1/query/stream", "/health"} <= set(spec["paths"])
    assert (await client.get("/docs")).status_code == 200
