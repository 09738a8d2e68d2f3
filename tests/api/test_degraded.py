"""Degraded modes on the real app: the cache's Redis dies mid-run and comes back (docs/operations.md).

The test owns its Redis (a real ``redis-server`` on a free port, no persistence) and kills it while
the app serves: answers go on uncached, /ready says degraded, logins are still limited in process,
and once Redis is back the cache fills and serves again without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.fakes import ScriptedLLM
from tests.restartable import redis_server
from tests.served import served_corpus

pytestmark = pytest.mark.models

QUESTION = {"question": "What colour is the Alpha widget?"}


async def ask(client: httpx.AsyncClient, question: dict[str, str] = QUESTION) -> dict[str, Any]:
    response = await client.post("/v1/query", json=question)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_queries_are_answered_uncached_while_the_cache_redis_is_down_and_cached_once_it_is_back(
    tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    with redis_server(tmp_path) as redis:
        settings = Settings(
            data_dir=tmp_path / "lore",
            # Retry Redis at every call, so the test needs no waiting for it to be tried again.
            cache={"redis_url": redis.url, "outage_retry_s": 0},
        )
        key = await user_key(settings, "reader", role="reader", grants=("handbook",))
        async with served_corpus(settings, docs, key) as (app, client):
            app.state.resources._llm = ScriptedLLM("The Alpha widget is blue [1].")
            # Given a served app whose answer cache is the test's Redis
            assert (await ask(client))["cached"] is False
            assert (await ask(client))["cached"] is True
            assert (await client.get("/ready")).json()["status"] == "ready"

            # when Redis dies mid-run
            redis.stop()

            # then queries are still answered, uncached
            down = [await ask(client) for _ in range(2)]
            assert [body["cached"] for body in down] == [False, False]
            assert all(body["answer"].strip() for body in down)
            other = await ask(client, {"question": "How much does the Alpha widget weigh?"})
            assert other["cached"] is False
            # and /ready says degraded (200: Lore answers), naming the cache and the rate limiter
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["cache"] == "failed"
            assert ready.json()["checks"]["rate_limiter"] == "failed"
            assert ready.json()["checks"]["database"] == "ok"
            # the failures are counted by operation
            metrics = (await client.get("/metrics")).text
            assert 'lore_cache_errors_total{op="get"}' in metrics
            # a login is refused for its password, not for Redis, and nothing names Redis's address
            login = await client.post("/v1/auth/token", data={"username": "reader", "password": "wrong"})
            assert login.status_code == 401, login.text
            assert str(redis.port) not in login.text

            # when Redis is back (empty: no persistence), the cache fills and serves again by itself
            redis.start()
            assert (await ask(client))["cached"] is False
            assert (await ask(client))["cached"] is True
            assert (await client.get("/ready")).json()["status"] == "ready"


async def test_a_stream_that_fails_names_no_internal_host(
    tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    from core.errors import BackendError
    from tests.api.test_query_api import parse_sse

    def fail(_: object) -> str:
        raise BackendError("the LLM at http://llm.internal:8000/v1 failed: 502 from 10.0.0.7:8000")

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    # generate: the answer is drafted by the LLM, whose failure comes mid-stream
    settings = Settings(data_dir=tmp_path / "lore", answer={"mode": "generate"})
    key = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, key) as (app, client):
        app.state.resources._llm = ScriptedLLM(fail)
        async with client.stream("POST", "/v1/query/stream", json=QUESTION) as response:
            raw = "".join([chunk async for chunk in response.aiter_text()])
    events = dict(parse_sse(raw))
    error = events["error"]
    assert isinstance(error, dict) and error["code"] == "backend_unavailable", raw
    assert error["message"] == "the LLM at <internal> failed: 502 from <internal>"
