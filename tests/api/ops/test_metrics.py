"""Prometheus metrics: per-app registries, route templates as labels, the counters routes feed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from api.ops.metrics import Metrics

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_metrics_count_requests_by_route_template(make_client: ClientFactory) -> None:
    client = await make_client()
    await client.get("/items/7")
    await client.get("/items/8")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    assert 'lore_http_requests_total{method="GET",route="/items/{item_id}",status="200"} 2.0' in text
    assert 'lore_http_request_duration_seconds_count{route="/items/{item_id}"} 2.0' in text
    assert "/items/7" not in text


async def test_unknown_paths_and_methods_share_bounded_labels(make_client: ClientFactory) -> None:
    client = await make_client()
    await client.get("/no/such/path/123")
    await client.request("BREW", "/items/1")
    text = (await client.get("/metrics")).text
    assert 'lore_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'lore_http_requests_total{method="OTHER",route="/items/{item_id}",status="405"} 1.0' in text
    assert "/no/such/path" not in text


async def test_each_app_has_its_own_registry(make_client: ClientFactory) -> None:
    first, second = await make_client(), await make_client()
    await first.get("/items/1")
    assert 'route="/items/{item_id}"' in (await first.get("/metrics")).text
    assert 'route="/items/{item_id}"' not in (await second.get("/metrics")).text


def test_token_and_cache_counters_add_up() -> None:
    metrics = Metrics()
    metrics.count_llm_tokens(tokens_in=120, tokens_out=30)
    metrics.count_llm_tokens(tokens_in=80, tokens_out=20)
    metrics.count_cache(hit=True)
    metrics.count_cache(hit=False)
    metrics.count_cache(hit=False)
    text = metrics.render().decode()
    assert 'lore_llm_tokens_total{direction="in"} 200.0' in text
    assert 'lore_llm_tokens_total{direction="out"} 50.0' in text
    assert 'lore_cache_lookups_total{result="hit"} 1.0' in text
    assert 'lore_cache_lookups_total{result="miss"} 2.0' in text
    assert 'lore_cache_hits_total{kind="exact"} 1.0' in text
    assert "process_cpu_seconds_total" in text


def test_semantic_hits_are_marked_in_the_response_and_counted_by_kind() -> None:
    from api.exchange import record_answer_metrics
    from api.schemas import QueryResponse
    from core.types import Answer

    hit = Answer("A", [], [], "m", cached=True, cache_kind="semantic", cache_similarity=0.93)
    body = QueryResponse.from_domain(hit).model_dump()
    assert (body["cached"], body["cache_kind"], body["cache_similarity"]) == (True, "semantic", 0.93)
    metrics = Metrics()
    record_answer_metrics(metrics, cached=True, usage={}, cache_kind="semantic")
    record_answer_metrics(metrics, cached=True, usage={}, cache_kind="exact")
    record_answer_metrics(metrics, cached=False, usage={})
    text = metrics.render().decode()
    assert 'lore_cache_hits_total{kind="semantic"} 1.0' in text
    assert 'lore_cache_hits_total{kind="exact"} 1.0' in text
    assert 'lore_cache_lookups_total{result="hit"} 2.0' in text
    assert 'lore_cache_lookups_total{result="miss"} 1.0' in text
