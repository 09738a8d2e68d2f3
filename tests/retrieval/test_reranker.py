"""The reranker stage: a cross-encoder's or an endpoint's order, and the fused order when it fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.components.reranker import CrossEncoderReranker, EndpointReranker
from core.resources import Resources
from core.types import SearchHit
from ingestion.pipeline import ingest_paths
from retrieval import service
from retrieval.ranking import rerank_hits
from tests.retrieval.rerankers import (
    ScriptedRerank,
    build_tiny_cross_encoder,
    cross_encoder_scores,
    scripted_rerank_server,
)

TEXTS = [
    "The cat sat on the mat.",
    "Qdrant stores vectors and payloads.",
    "Reciprocal rank fusion merges two rankings.",
    "Paris is the capital of France.",
]


def _hits() -> list[SearchHit]:
    return [
        SearchHit(1.0 - i / 10, f"c{i}", f"d{i}", "corpus", text, f"s{i}", "", None)
        for i, text in enumerate(TEXTS)
    ]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.mark.models
async def test_cross_encoder_order_follows_its_scores(tiny_cross_encoder: Path) -> None:
    query = "which city is the capital of France?"
    expected = cross_encoder_scores(tiny_cross_encoder, query, TEXTS)
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))

    ranked, verdict = await rerank_hits(reranker, query, _hits(), candidates=10, timeout_s=30)

    order = sorted(range(len(TEXTS)), key=lambda i: -expected[i])
    assert [h.text for h in ranked] == [TEXTS[i] for i in order]
    assert [h.score for h in ranked] == pytest.approx([expected[i] for i in order], abs=1e-5)
    assert verdict.startswith("reranked 4 candidate(s)")


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, type[ScriptedRerank]]]:
    with scripted_rerank_server() as served:
        yield served


async def test_endpoint_reranks_over_http(scripted_server: tuple[str, type[ScriptedRerank]]) -> None:
    url, handler = scripted_server
    reranker = EndpointReranker(url, "bge-reranker-base", api_key=None, timeout_s=5)
    try:
        ranked, verdict = await rerank_hits(reranker, "q", _hits(), candidates=3, timeout_s=5)
    finally:
        await reranker.close()

    assert handler.requests == [
        {"path": "/v1/rerank", "model": "bge-reranker-base", "query": "q", "documents": TEXTS[:3]}
    ]
    # The first three reversed by the endpoint's scores; the fourth, not sent, keeps its place after them.
    assert [h.chunk_id for h in ranked] == ["c2", "c1", "c0", "c3"]
    assert [h.score for h in ranked[:3]] == [0.2, 0.1, 0.0]
    assert verdict == "reranked 3 candidate(s) with endpoint:bge-reranker-base"


async def test_a_hanging_endpoint_falls_back_to_the_fused_order(
    scripted_server: tuple[str, type[ScriptedRerank]],
) -> None:
    url, handler = scripted_server
    handler.hang_s = 5.0
    timeout = 0.5
    reranker = EndpointReranker(url, "m", api_key=None, timeout_s=timeout)
    hits = _hits()
    try:
        start = time.perf_counter()
        ranked, verdict = await rerank_hits(reranker, "q", hits, candidates=30, timeout_s=timeout)
        waited = time.perf_counter() - start
    finally:
        await reranker.close()

    print(f"hanging reranker: answered after {waited * 1000:.0f} ms (timeout {timeout * 1000:.0f} ms)")
    assert waited < timeout + 1.0
    assert ranked == hits
    assert verdict.startswith("fallback: fused order")


async def test_a_failing_endpoint_falls_back_to_the_fused_order() -> None:
    # Nothing listens on port 9 of localhost: the connection is refused.
    reranker = EndpointReranker("http://127.0.0.1:9", "m", api_key=None, timeout_s=1)
    hits = _hits()
    try:
        ranked, verdict = await rerank_hits(reranker, "q", hits, candidates=30, timeout_s=1)
    finally:
        await reranker.close()
    assert ranked == hits
    assert verdict == "fallback: fused order (ConnectError)"


@pytest.mark.models
async def test_an_answer_cached_with_the_reranker_off_is_not_served_with_it_on(
    resources: Resources, tmp_path: Path, tiny_cross_encoder: Path
) -> None:
    """The reranker decides which chunks become sources, so it is part of the answer cache's scope."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "w.md").write_text("# Widgets\n\nThe Alpha widget is blue.\n\n## Care\n\nWipe widgets dry.\n")
    await ingest_paths(resources, [docs], corpus="c")
    retrieval = resources.settings.retrieval
    ask = service.Ask("What colour is the Alpha widget?", corpus="c")

    off = await service.answer(resources, ask)
    off_again = await service.answer(resources, ask)
    retrieval.reranker, retrieval.reranker_model = "cross-encoder", str(tiny_cross_encoder)
    on = await service.answer(resources, ask)
    on_again = await service.answer(resources, ask)
    retrieval.reranker = "none"
    off_later = await service.answer(resources, ask)

    assert not off.cached and off_again.cached
    # Neither the exact entry nor the semantic one (same question, same corpora) of the fused answer.
    assert not on.cached and on.guardrails["reranker"].startswith("reranked")
    assert on_again.cached and on_again.cache_kind == "exact"
    assert off_later.cached and "reranker" not in off_later.guardrails
