"""Property-based API testing: schemathesis drives every operation of the OpenAPI document with
generated requests as an admin, against a real server; no response may be a 5xx."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings

from api.app import create_app
from core.settings import LLMSettings, RateLimitSettings, Settings

pytestmark = pytest.mark.models


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(root: Path, lore: Settings, user_key: Callable[..., Any]) -> str:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    key: str = await user_key(lore, "root", role="admin")
    docs = root / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha facts.\n")
    async with open_resources(lore, with_llm=False) as resources:
        await ingest_paths(resources, [docs], corpus="handbook")
    return key


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> Iterator[tuple[str, str]]:
    """A real uvicorn server on a free local port, and an admin API key for it."""
    root = tmp_path_factory.mktemp("fuzz")
    # Short answers keep generated questions cheap; limits off so every example reaches the route.
    lore = Settings(
        data_dir=root / "lore", llm=LLMSettings(max_tokens=8), rate_limit=RateLimitSettings(enabled=False)
    )
    key = asyncio.run(_prepare(root, lore, user_key))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(lore), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.1)
    try:
        yield url, key
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api_schema(served: tuple[str, str]) -> Any:
    url, _ = served
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_operation_answers_with_a_server_error(api_schema: Any, served: tuple[str, str]) -> None:
    # Driven by hand rather than through schemathesis's pytest plugin, which does not load under pytest 9.
    url, key = served
    failures: list[str] = []
    calls: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )

        check()
    assert len(calls) >= 100, "schemathesis generated too few requests to mean anything"
    assert not failures, "\n".join(failures[:10])


def test_the_fuzzed_server_is_still_healthy(served: tuple[str, str]) -> None:
    url, _ = served
    assert httpx.get(f"{url}/ready", timeout=10).json()["status"] == "ready"
