"""POST /v1/search and /v1/query with a reranker on: its order, its verdict, and the fused order
when it does not answer in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.retrieval.rerankers import build_tiny_cross_encoder, cross_encoder_scores, scripted_rerank_server
from tests.served import served_corpus

pytestmark = pytest.mark.models

QUERY = "What colour is the Alpha widget?"
# Past this the hanging endpoint gives up on the reranker; the endpoint itself would take HANG_S.
TIMEOUT_S = 0.5
HANG_S = 30.0

SECTIONS = {
    "Colours": "The Alpha widget is blue and the Beta widget is green.",
    "Weight": "The Alpha widget weighs three grams; widgets ship in boxes of ten.",
    "Care": "Clean widgets with a dry cloth once a week and keep them out of the sun.",
    "History": "Widgets were first made in 1890 in a workshop by the river bridge.",
    "Returns": "A widget may be returned within thirty days if it is still in its box.",
}


@asynccontextmanager
async def _served(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any], **retrieval: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with ``retrieval`` settings over the widget handbook, and a reader's client to it."""
    root = tmp_path_factory.mktemp("search-reranker")
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text(
        "# Widgets\n\n" + "".join(f"## {title}\n\n{text}\n\n" for title, text in SECTIONS.items())
    )
    settings = Settings(data_dir=root / "lore", retrieval=retrieval)
    key = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as (_, client):
        yield client


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="module")
def hanging_url() -> Iterator[str]:
    with scripted_rerank_server(hang_s=HANG_S) as (url, _):
        yield url


@pytest.fixture(scope="module")
async def fused(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    async with _served(tmp_path_factory, user_key) as client:
        yield client


@pytest.fixture(scope="module")
async def cross_encoded(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any], tiny_cross_encoder: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with _served(
        tmp_path_factory, user_key, reranker="cross-encoder", reranker_model=str(tiny_cross_encoder)
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def hanging(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any], hanging_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with _served(
        tmp_path_factory,
        user_key,
        reranker="endpoint",
        reranker_url=hanging_url,
        reranker_model="bge-reranker-base",
        reranker_timeout_s=TIMEOUT_S,
    ) as client:
        yield client


async def _search(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/search", json={"query": QUERY, "k": 5})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ranking(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["text"], r["score"]) for r in body["results"]]


async def test_search_results_follow_the_cross_encoders_scores(
    cross_encoded: httpx.AsyncClient, tiny_cross_encoder: Path
) -> None:
    body = await _search(cross_encoded)

    results = body["results"]
    assert len(results) > 1
    expected = cross_encoder_scores(tiny_cross_encoder, QUERY, [r["text"] for r in results])
    # Each result carries the cross-encoder's own score, and they come best first.
    assert [r["score"] for r in results] == pytest.approx(expected, abs=1e-5)
    assert expected == sorted(expected, reverse=True)
    assert body["verdicts"]["reranker"].startswith("reranked ")
    assert body["verdicts"]["reranker"].endswith(f"with cross-encoder:{tiny_cross_encoder}")
    assert {"embed_ms", "search_ms", "rerank_ms", "total_ms"} <= set(body["timings"])


async def test_search_without_a_reranker_says_nothing_of_one(fused: httpx.AsyncClient) -> None:
    body = await _search(fused)

    assert body["results"]
    assert "reranker" not in body["verdicts"] and "rerank_ms" not in body["timings"]


async def test_a_hanging_rerank_endpoint_leaves_the_fused_order(
    hanging: httpx.AsyncClient, fused: httpx.AsyncClient
) -> None:
    await _search(hanging)  # the first search of an app warms its models up
    start = time.perf_counter()
    body = await _search(hanging)
    waited = time.perf_counter() - start

    # The same chunks, scores and order as with no reranker (document IDs differ: each app ingested
    # the handbook from its own folder).
    assert _ranking(body) == _ranking(await _search(fused))
    verdict = body["verdicts"]["reranker"]
    # Lore's own deadline fires first (the HTTP client waits a second longer).
    assert verdict == f"fallback: fused order (no answer within {TIMEOUT_S} s)", verdict
    # A generous bound: far below the endpoint's HANG_S, so Lore did not wait for it (-s shows it).
    start = time.perf_counter()
    await _search(fused)
    alone = (time.perf_counter() - start) * 1000
    stage = body["timings"]["rerank_ms"]
    print(
        f"search: {waited * 1000:.0f} ms with a hanging reranker (stage {stage} ms), {alone:.0f} ms without"
    )
    assert waited < TIMEOUT_S + 10


async def test_query_reports_the_rerankers_verdict(cross_encoded: httpx.AsyncClient) -> None:
    response = await cross_encoded.post("/v1/query", json={"question": QUERY, "corpus": "handbook"})

    assert response.status_code == 200, response.text
    assert response.json()["guardrails"]["reranker"].startswith("reranked ")


async def test_query_reports_the_fallback_when_the_reranker_hangs(hanging: httpx.AsyncClient) -> None:
    response = await hanging.post("/v1/query", json={"question": QUERY, "corpus": "handbook"})

    assert response.status_code == 200, response.text
    assert response.json()["guardrails"]["reranker"].startswith("fallback: fused order (")
