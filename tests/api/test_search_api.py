"""POST /v1/search: matching chunks without an answer, with a question's limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.served import served_corpus

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
async def client(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    root = tmp_path_factory.mktemp("search")
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    (docs / "bridges.md").write_text("# Bridges\n\nThe river bridge opened in 1890.\n")
    settings = Settings(data_dir=root / "lore", retrieval={"max_question_chars": 100})
    key = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as (_, client):
        yield client


async def test_search_returns_the_best_chunks_first(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/search", json={"query": "What colour is the widget?", "k": 2})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2
    best = results[0]
    assert set(best) == {"score", "document_id", "title", "source", "page", "text", "location", "scores"}
    assert "blue" in best["text"] and best["title"] == "Widgets" and best["page"] is None
    assert best["score"] >= results[1]["score"]


async def test_search_in_a_named_corpus(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/search", json={"query": "bridge", "corpus": "handbook", "k": 1})

    assert response.status_code == 200
    assert [r["title"] for r in response.json()["results"]] == ["Bridges"]


async def test_unknown_corpus_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/search", json={"query": "bridge", "corpus": "nowhere", "k": 3})

    assert response.status_code == 404


@pytest.mark.parametrize("k", [0, 51, None])
async def test_k_out_of_bounds_is_refused(client: httpx.AsyncClient, k: int | None) -> None:
    response = await client.post("/v1/search", json={"query": "bridge", "k": k})

    assert response.status_code == 422


@pytest.mark.parametrize("query", ["", "   ", "x" * 101])
async def test_empty_or_long_query_is_refused(client: httpx.AsyncClient, query: str) -> None:
    response = await client.post("/v1/search", json={"query": query, "k": 3})

    assert response.status_code == 422


async def test_search_filters_by_source_type_and_date(client: httpx.AsyncClient) -> None:
    everything = (await client.post("/v1/search", json={"query": "widget bridge", "k": 5})).json()["results"]
    bridges = next(r["source"] for r in everything if r["title"] == "Bridges")

    async def titles(filters: dict[str, object]) -> list[str]:
        body = {"query": "What colour is the widget?", "k": 5, "filters": filters}
        response = await client.post("/v1/search", json=body)
        assert response.status_code == 200, response.text
        return [r["title"] for r in response.json()["results"]]

    assert await titles({"source": [bridges]}) == ["Bridges"]
    assert set(await titles({"doc_type": ["markdown"]})) == {"Widgets", "Bridges"}
    assert await titles({"doc_type": ["pdf"]}) == []
    # the files were written moments ago: their modification time is their date
    assert set(await titles({"date_from": "2020-01-01T00:00:00Z"})) == {"Widgets", "Bridges"}
    assert await titles({"date_to": "2020-01-01T00:00:00Z"}) == []


async def test_unknown_filter_fields_are_refused(client: httpx.AsyncClient) -> None:
    body = {"query": "widget", "k": 1, "filters": {"author": ["x"]}}
    response = await client.post("/v1/search", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
