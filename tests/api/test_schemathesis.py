"""Property-based API testing: schemathesis drives every operation of the OpenAPI document with
generated requests as an admin, against a real server on SQLite and on PostgreSQL; no response
may be a 5xx (schemathesis's ``not_a_server_error``), nor may the server drop a connection.

A second pass spoils the generated strings (path and query parameters, form fields, JSON bodies)
with NUL characters, lone surrogates, other control characters and ``..//``: PostgreSQL refuses
NUL in text, and every such request used to be a 500 (issue 14).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.failures import FailureGroup

from api.app import create_app
from core.settings import DatabaseSettings, LLMSettings, RateLimitSettings, Settings
from tests.conftest import new_postgres_database

pytestmark = pytest.mark.models

# What a spoiled string gets inserted somewhere: each can be sent in a URL or a form.
URL_SPOILERS = ("\x00", "\x00\x00", "%00", "\x01", "\x1b", "\x7f", "..//", "../", "\x85", "é\x00")
# JSON can carry more: lone surrogates, as the escapes "\ud800" and so on.
JSON_SPOILERS = (*URL_SPOILERS, "\ud800", "\udfff", "\ud83d", "a\udc00b")
SPOILED = ("\x00", "\ud800", "\udfff", "\ud83d", "\udc00")


@dataclass
class Served:
    database: str
    url: str
    key: str


@dataclass
class Tally:
    """What a fuzzing pass did: requests per operation, and every 5xx or dropped connection."""

    calls: dict[str, int] = field(default_factory=dict)
    spoiled: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self, database: str, name: str) -> str:
        total = sum(self.calls.values())
        return (
            f"schemathesis {name} on {database}: {len(self.calls)} operations, {total} requests "
            f"({self.spoiled} carrying NUL or a lone surrogate), {len(self.failures)} server errors"
        )


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
    async with open_resources(lore, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="handbook")
    return key


@contextmanager
def _serving(lore: Settings) -> Iterator[str]:
    """A real uvicorn server for ``lore`` on a free local port, in a thread: gives its URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(lore), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[Served]:
    """A real server on SQLite, then on a fresh PostgreSQL database, and an admin API key for it."""
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    async with AsyncExitStack() as stack:
        database = DatabaseSettings()
        if request.param == "postgres":
            url = await stack.enter_async_context(
                new_postgres_database(request.getfixturevalue("postgres_url"))
            )
            database = DatabaseSettings(url=url)
        # Short answers keep generated questions cheap; limits off so every example reaches the route.
        lore = Settings(
            data_dir=root / "lore",
            database=database,
            llm=LLMSettings(max_tokens=8),
            rate_limit=RateLimitSettings(enabled=False),
        )
        key = await _prepare(root, lore, user_key)
        yield Served(request.param, stack.enter_context(_serving(lore)), key)


def _spoil(value: Any, spoilers: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """``value`` with its strings (keys aside) left alone or given a spoiler somewhere, at random."""
    if isinstance(value, str):
        inserted = st.builds(
            lambda bad, at: value[:at] + bad + value[at:],
            st.sampled_from(spoilers),
            st.integers(0, len(value)),
        )
        return st.one_of(inserted, st.just(value))
    if isinstance(value, dict):
        return st.fixed_dictionaries({key: _spoil(item, spoilers) for key, item in value.items()})
    if isinstance(value, list):
        return st.tuples(*(_spoil(item, spoilers) for item in value)).map(list)
    return st.just(value)


def spoil_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    """The ``flatmap_case`` hook: path and query parameters, forms and JSON bodies spoiled."""
    is_json = bool(case.media_type) and "json" in case.media_type
    body = _spoil(case.body, JSON_SPOILERS if is_json else URL_SPOILERS)
    if case.path_parameters is None:
        case.path_parameters = {}
    if case.query is None:
        case.query = {}

    def spoiled(parts: tuple[dict[str, Any], dict[str, Any], Any]) -> Any:
        # A new case each time: the one schemathesis gave may be drawn again (an explicit example
        # is one object), and spoiling it in place would change what the next draw spoils, which
        # Hypothesis rejects as inconsistent data generation. Set past Case.__setattr__ and frozen:
        # schemathesis would otherwise mark the metadata (which a derived case shares) for
        # revalidation against the schema, and its validator cannot take a lone surrogate.
        spoilt = case.derive(keep_auth=True)
        spoilt.freeze_metadata()
        object.__setattr__(spoilt, "path_parameters", dict(parts[0]))
        object.__setattr__(spoilt, "query", dict(parts[1]))
        if isinstance(case.body, dict | list):
            object.__setattr__(spoilt, "body", parts[2])
        return spoilt

    return st.tuples(_spoil(case.path_parameters, URL_SPOILERS), _spoil(case.query, URL_SPOILERS), body).map(
        spoiled
    )


def _carries(value: Any, needles: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return any(needle in value for needle in needles)
    if isinstance(value, dict):
        return any(_carries(v, needles) for v in value.values())
    if isinstance(value, list):
        return any(_carries(v, needles) for v in value)
    return False


def _fuzz(schema: Any, served: Served, *, max_examples: int) -> Tally:
    # Driven by hand rather than through schemathesis's pytest plugin, which does not load under pytest 9.
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        _fuzz_operation(operation, served, tally, max_examples=max_examples)
    return tally


def _fuzz_operation(operation: Any, served: Served, tally: Tally, *, max_examples: int) -> None:
    name = f"{operation.method.upper()} {operation.path}"
    headers = {"Authorization": f"Bearer {served.key}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        tally.calls[name] = tally.calls.get(name, 0) + 1
        tally.spoiled += _carries([case.path_parameters, case.query, case.body], SPOILED)
        try:
            response = case.call(base_url=served.url, headers=headers, timeout=120)
        except requests.ConnectionError as exc:
            tally.failures.append(f"{name} {case.formatted_path}: connection dropped: {exc}")
            return
        try:
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])
        except (AssertionError, FailureGroup):
            tally.failures.append(f"{name}: {response.status_code} {response.text[:200]} <- {case.body!r}")

    check()


def test_no_operation_answers_with_a_server_error(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    tally = _fuzz(schema, served, max_examples=12)
    print(tally.summary(served.database, "generated"))
    assert sum(tally.calls.values()) >= 100, "schemathesis generated too few requests to mean anything"
    assert not tally.failures, "\n".join(tally.failures[:10])


def test_nul_and_lone_surrogates_anywhere_are_never_a_server_error(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    schema.hook("flatmap_case")(spoil_case)
    tally = _fuzz(schema, served, max_examples=15)
    print(tally.summary(served.database, "NUL-spoiled"))
    assert sum(tally.calls.values()) >= 100, "schemathesis generated too few requests to mean anything"
    assert tally.spoiled >= sum(tally.calls.values()) // 4, "too few requests carried a NUL or surrogate"
    assert not tally.failures, "\n".join(tally.failures[:10])


def test_the_fuzzed_server_is_still_healthy(served: Served) -> None:
    assert httpx.get(f"{served.url}/ready", timeout=10).json()["status"] == "ready"
