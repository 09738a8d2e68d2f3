"""What an evaluator may see and make the server do through /v1/evals/runs, on SQLite and PostgreSQL.

Runs are shown only to callers who may read their corpus; a judge endpoint must be on the
server's allow-list; a baseline is a visible run's ID, never a path; runs are bounded in size,
in number at once, and in how often one user starts them.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from tests.conftest import new_postgres_database

pytestmark = pytest.mark.models

CASES = [
    {"question": "What colour is the widget?", "reference_documents": ["widgets.md"]},
    {"question": "When did the river bridge open?", "reference_documents": ["bridges.md"]},
]
MAX_CASES, MAX_REPEATS, MAX_CONCURRENCY, MAX_RUNNING, EVAL_BURST = 3, 2, 2, 2, 50


def suite(corpus: str, **overrides: Any) -> dict[str, Any]:
    return {"name": f"on-{corpus}", "corpus": corpus, "mode": "retrieve", "k": 2} | overrides


@dataclass
class Listener:
    """A TCP port that counts the connections made to it and closes each at once."""

    port: int
    connections: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


async def listen() -> Listener:
    listener = Listener(port=0)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        writer.close()

    listener.server = await asyncio.start_server(accept, "127.0.0.1", 0)
    sock: socket.socket = listener.server.sockets[0]
    listener.port = sock.getsockname()[1]
    return listener


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lore:
    app: Any
    client: httpx.AsyncClient
    keys: dict[str, str]
    runs: dict[str, str]  # the finished runs every test may use: "secret" (admin's), "public" (eve's)
    allowed: Listener
    forbidden: Listener

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def start(self, who: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/v1/evals/runs", json=body, headers=self.auth(who))

    async def finished(self, who: str, run_id: str) -> dict[str, Any]:
        for _ in range(600):
            response = await self.client.get(f"/v1/evals/runs/{run_id}", headers=self.auth(who))
            assert response.status_code == 200, response.text
            run: dict[str, Any] = response.json()
            if run["state"] not in ("pending", "running"):
                return run
            await asyncio.sleep(0.2)
        raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def lore(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[Lore]:
    """Corpora `publicB` and `secretA`; eve and ivy are evaluators granted `publicB` only; root is
    an admin; root has a finished run over secretA and eve one over publicB."""
    root = tmp_path_factory.mktemp(f"evals-scope-{request.param}")
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    (docs / "bridges.md").write_text("# Bridges\n\nThe river bridge opened in 1890.\n")
    async with AsyncExitStack() as stack:
        database: dict[str, Any] = {}
        if request.param == "postgres":
            url = await stack.enter_async_context(
                new_postgres_database(request.getfixturevalue("postgres_url"))
            )
            database = {"url": url}
        allowed, forbidden = await listen(), await listen()
        for listener in (allowed, forbidden):
            assert listener.server is not None
            stack.push_async_callback(listener.server.wait_closed)
            stack.callback(listener.server.close)
        settings = Settings(
            data_dir=root / "lore",
            database=database,
            # No LLM answers here; the judge is sent where a suite says.
            llm={"base_url": f"http://127.0.0.1:{closed_port()}/v1", "timeout_s": 1},
            evals={
                "judge_endpoints": [allowed.url],
                "max_cases": MAX_CASES,
                "max_repeats": MAX_REPEATS,
                "max_concurrency": MAX_CONCURRENCY,
                "max_running": MAX_RUNNING,
            },
            rate_limit={"eval_burst": EVAL_BURST, "eval_per_minute": 0.01, "admin_burst": 1000},
        )
        keys = {
            "root": await user_key(settings, "root", role="admin"),
            "eve": await user_key(settings, "eve", role="evaluator", grants=("publicB",)),
            "ivy": await user_key(settings, "ivy", role="evaluator", grants=("publicB",)),
        }
        from core.resources import open_resources
        from ingestion.pipeline import ingest_paths

        async with open_resources(settings, with_llm=False) as resources:
            for corpus in ("publicB", "secretA"):
                await ingest_paths(resources, [docs], corpus=corpus)
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://lore.test", timeout=120
            )
        )
        lore = Lore(app=app, client=client, keys=keys, runs={}, allowed=allowed, forbidden=forbidden)
        for name, who, corpus in (("secret", "root", "secretA"), ("public", "eve", "publicB")):
            started = await lore.start(who, {"suite": suite(corpus), "cases": CASES})
            assert started.status_code == 202, started.text
            run = await lore.finished(who, started.json()["id"])
            assert run["state"] == "succeeded", run
            lore.runs[name] = run["id"]
        yield lore


async def test_an_evaluator_sees_no_run_over_a_corpus_they_have_no_grant_on(lore: Lore) -> None:
    secret, public = lore.runs["secret"], lore.runs["public"]
    listed = await lore.client.get("/v1/evals/runs", headers=lore.auth("eve"))
    assert listed.status_code == 200
    ids = {r["id"] for r in listed.json()}
    assert public in ids and secret not in ids
    admin_listed = await lore.client.get("/v1/evals/runs", headers=lore.auth("root"))
    assert {secret, public} <= {r["id"] for r in admin_listed.json()}

    for path in (f"/v1/evals/runs/{secret}", f"/v1/evals/runs/{secret}/report"):
        assert (await lore.client.get(path, headers=lore.auth("root"))).status_code == 200
        hidden = await lore.client.get(path, headers=lore.auth("eve"))
        # Exactly as for a run that does not exist: nothing says the run is there.
        missing = await lore.client.get(path.replace(secret, str(uuid.uuid4())), headers=lore.auth("eve"))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
        assert "widget" not in hidden.text
    assert (
        await lore.client.get(f"/v1/evals/runs/{public}/report", headers=lore.auth("eve"))
    ).status_code == 200


async def test_a_baseline_is_a_run_the_caller_can_see(lore: Lore, tmp_path: Path) -> None:
    gated = suite("publicB", regression={"max_drop": {"hit@2": 0.5}})
    # A visible run's ID is a baseline: its results gate the new run.
    started = await lore.start("eve", {"suite": gated, "cases": CASES, "baseline": lore.runs["public"]})
    assert started.status_code == 202, started.text
    # The bucket a start spends is the eval one, not the admin one every eval route spends.
    assert started.headers["RateLimit-Limit"] == str(EVAL_BURST)
    run = await lore.finished("eve", started.json()["id"])
    assert run["state"] == "succeeded", run
    assert [g["kind"] for g in run["gates"]] == ["regression"]
    assert lore.runs["public"] in run["gates"][0]["name"]

    # Another's run over a corpus eve cannot read is no baseline, and answers as a missing one.
    for ref in (lore.runs["secret"], str(uuid.uuid4())):
        for body in (
            {"suite": gated, "cases": CASES, "baseline": ref},
            {"suite": gated | {"regression": {"baseline": ref, "max_drop": {"hit@2": 0.5}}}, "cases": CASES},
        ):
            refused = await lore.start("eve", body)
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"]["message"] == f"no eval run {ref!r}"


async def test_a_baseline_path_is_refused_without_looking_at_the_disk(lore: Lore, tmp_path: Path) -> None:
    # A real run's results copied elsewhere, and a path where nothing is: the same answer for both.
    run_dir = lore.app.state.resources.settings.eval_runs_dir / lore.runs["public"]
    shutil.copytree(run_dir, tmp_path / "copy")
    answers = []
    for ref in (str(tmp_path / "copy"), str(tmp_path / "nothing"), "../../etc", "results.json"):
        for body in (
            {"suite": suite("publicB"), "cases": CASES, "baseline": ref},
            {"suite": suite("publicB", regression={"baseline": ref}), "cases": CASES},
        ):
            refused = await lore.start("eve", body)
            assert refused.status_code == 422, refused.text
            answers.append(refused.json()["error"]["message"])
    assert len(set(answers)) == 1 and "never a path" in answers[0]


async def test_a_judge_off_the_allow_list_is_refused_and_never_contacted(lore: Lore) -> None:
    before = len((await lore.client.get("/v1/evals/runs", headers=lore.auth("eve"))).json())
    judged = suite("publicB", mode="answer")
    judge = {"enabled": True, "metrics": ["faithfulness"], "calibration_size": 0}
    for body in (
        {"suite": judged | {"judge": judge | {"base_url": lore.forbidden.url}}, "cases": CASES},
        # The allowed host on another port, or under another path, is another endpoint.
        {"suite": judged | {"judge": judge | {"base_url": f"{lore.allowed.url}/../x"}}, "cases": CASES},
        {
            "suite": judged
            | {"judge": judge | {"base_url": lore.allowed.url.replace("127.0.0.1", "localhost")}},
            "cases": CASES,
        },
    ):
        refused = await lore.start("eve", body)
        assert refused.status_code == 422, refused.text
        assert "evals.judge_endpoints" in refused.json()["error"]["message"]
    # Nor can a suite move the server's own LLM endpoint, which judges when judge.base_url is unset.
    moved = judged | {"judge": judge, "settings": {"llm": {"base_url": lore.forbidden.url}}}
    refused = await lore.start("eve", {"suite": moved, "cases": CASES})
    assert refused.status_code == 422, refused.text
    assert "llm" in refused.json()["error"]["message"]
    runs_dir = judged | {"settings": {"evals": {"runs_dir": "/"}}}
    assert (await lore.start("eve", {"suite": runs_dir, "cases": CASES})).status_code == 422

    assert lore.forbidden.connections == 0
    assert len((await lore.client.get("/v1/evals/runs", headers=lore.auth("eve"))).json()) == before


async def test_an_allowed_judge_endpoint_is_the_one_the_judge_calls(lore: Lore) -> None:
    before = lore.allowed.connections
    # Another spelling of the listed URL (scheme case, trailing slash) names the same endpoint.
    spelled = lore.allowed.url.replace("http://", "HTTP://") + "/"
    # The judge's calibration asks it about the reference answers before any question is answered.
    judge = {"enabled": True, "base_url": spelled, "metrics": ["faithfulness"], "calibration_size": 2}
    answers = ("The Alpha widget is blue.", "The river bridge opened in 1890.")
    cases = [c | {"reference_answer": a} for c, a in zip(CASES, answers, strict=True)]
    body = {"suite": suite("publicB", mode="answer", judge=judge), "cases": cases}
    started = await lore.start("eve", body)
    assert started.status_code == 202, started.text
    run = await lore.finished("eve", started.json()["id"])
    assert run["state"] in ("succeeded", "failed"), run
    # The listener closes every connection, so the verdicts are not measured, but it was asked.
    assert lore.allowed.connections > before
    assert lore.forbidden.connections == 0


async def test_runs_past_the_servers_bounds_are_refused_naming_the_setting(lore: Lore) -> None:
    too_many = [{"question": f"Question {n}?"} for n in range(MAX_CASES + 1)]
    for body, setting in (
        ({"suite": suite("publicB"), "cases": too_many}, "evals.max_cases"),
        ({"suite": suite("publicB", repeats=MAX_REPEATS + 1), "cases": CASES}, "evals.max_repeats"),
        (
            {"suite": suite("publicB", concurrency=MAX_CONCURRENCY + 1), "cases": CASES},
            "evals.max_concurrency",
        ),
    ):
        refused = await lore.start("eve", body)
        assert refused.status_code == 422, refused.text
        assert setting in refused.json()["error"]["message"]

    in_flight = lore.app.state.eval_runs
    busy = {f"busy-{n}" for n in range(MAX_RUNNING)}
    in_flight.ids |= busy
    try:
        refused = await lore.start("eve", {"suite": suite("publicB"), "cases": CASES})
    finally:
        in_flight.ids -= busy
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert "evals.max_running" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0


async def test_starting_runs_spends_the_users_own_budget_over_all_their_keys(lore: Lore) -> None:
    created = await lore.client.post(
        "/v1/keys", json={"username": "ivy", "name": "second"}, headers=lore.auth("root")
    )
    assert created.status_code == 201, created.text
    second = {"Authorization": f"Bearer {created.json()['key']}"}
    too_many = {"suite": suite("publicB"), "cases": [{"question": f"Q{n}?"} for n in range(MAX_CASES + 1)]}
    spent = [await lore.start("ivy", too_many) for _ in range(EVAL_BURST)]
    assert {r.status_code for r in spent} == {422}
    refused = await lore.client.post("/v1/evals/runs", json=too_many, headers=second)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    # Listing runs is not starting one.
    assert (await lore.client.get("/v1/evals/runs", headers=second)).status_code == 200
