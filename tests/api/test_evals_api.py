"""/v1/evals/runs (evaluator role): start a suite, follow it, read its results and report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings

pytestmark = pytest.mark.models

SUITE = {
    "name": "widgets",
    "corpus": "handbook",
    "mode": "retrieve",
    "k": 2,
    "thresholds": {"hit@2": 0.5},
}
CASES = [
    {"question": "What colour is the widget?", "reference_documents": ["widgets.md"], "tags": ["w"]},
    {"question": "When did the river bridge open?", "reference_documents": ["bridges.md"], "tags": ["b"]},
]


@pytest.fixture(scope="module")
async def clients(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("evals-api")
    docs = root / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n")
    (docs / "bridges.md").write_text("# Bridges\n\nThe river bridge opened in 1890.\n")
    settings = Settings(data_dir=root / "lore")
    keys = {
        "eve": await user_key(settings, "eve", role="evaluator", grants=("handbook",)),
        "rita": await user_key(settings, "rita", role="reader", grants=("handbook",)),
    }
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    async with open_resources(settings, with_llm=False) as resources:
        await ingest_paths(resources, [docs], corpus="handbook")
        await ingest_paths(resources, [docs / "bridges.md"], corpus="private")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        out: dict[str, httpx.AsyncClient] = {}
        for name, key in keys.items():
            out[name] = httpx.AsyncClient(
                transport=transport,
                base_url="http://lore.test",
                timeout=120,
                headers={"Authorization": f"Bearer {key}"},
            )
        try:
            yield {**out, "app": app, "eve_key": keys["eve"]}
        finally:
            for c in out.values():
                await c.aclose()


async def _finished(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        response = await client.get(f"/v1/evals/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["state"] not in ("pending", "running"):
            return run
        await asyncio.sleep(0.2)
    raise AssertionError("the run did not finish within 60 s")


async def test_an_evaluator_runs_a_suite_and_reads_its_results_and_report(
    clients: dict[str, Any],
) -> None:
    eve = clients["eve"]
    started = await eve.post("/v1/evals/runs", json={"suite": SUITE, "cases": CASES})
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "pending"
    run = await _finished(eve, started.json()["id"])
    assert run["state"] == "succeeded", run
    assert run["passed"] is True
    assert run["summary"]["metrics"]["hit@2"] == 1.0
    assert [g["passed"] for g in run["gates"]] == [True]
    listed = await eve.get("/v1/evals/runs")
    assert run["id"] in [r["id"] for r in listed.json()]
    report = await eve.get(f"/v1/evals/runs/{run['id']}/report")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "<svg" in report.text and "widgets" in report.text


async def test_a_failed_gate_marks_the_run_failed(clients: dict[str, Any]) -> None:
    suite = SUITE | {"thresholds": {"hit@2": 1.0}}
    cases = [*CASES, {"question": "Which metal is the widget?", "reference_documents": ["nowhere.md"]}]
    started = await clients["eve"].post("/v1/evals/runs", json={"suite": suite, "cases": cases})
    run = await _finished(clients["eve"], started.json()["id"])
    assert run["state"] == "failed" and run["passed"] is False


async def test_readers_and_ungranted_corpora_are_refused(clients: dict[str, Any]) -> None:
    as_reader = await clients["rita"].post("/v1/evals/runs", json={"suite": SUITE, "cases": CASES})
    assert as_reader.status_code == 403
    assert (await clients["rita"].get("/v1/evals/runs")).status_code == 403
    private = await clients["eve"].post(
        "/v1/evals/runs", json={"suite": SUITE | {"corpus": "private"}, "cases": CASES}
    )
    assert private.status_code == 403
    assert "grant" in private.json()["error"]["message"]


async def test_bad_requests_get_the_one_error_shape(clients: dict[str, Any]) -> None:
    eve = clients["eve"]
    # a suite sent over HTTP may not name files on the server
    by_path = await eve.post("/v1/evals/runs", json={"suite": SUITE | {"dataset": "/etc/passwd"}})
    assert by_path.status_code == 422
    assert set(by_path.json()["error"]) >= {"code", "message"}
    assert (await eve.post("/v1/evals/runs", json={"shipped": "../../etc"})).status_code == 404
    assert (await eve.get("/v1/evals/runs/nope")).status_code == 404
    assert (await eve.get("/v1/evals/runs/nope/report")).status_code == 404


async def test_inline_suites_stay_inside_the_datasets_folder(clients: dict[str, Any]) -> None:
    eve = clients["eve"]
    outside = {"loader": "beir", "path": "../../etc"}
    response = await eve.post("/v1/evals/runs", json={"suite": SUITE | {"dataset": outside}})
    assert response.status_code == 422
    assert "datasets folder" in response.json()["error"]["message"]
    bad_case = await eve.post("/v1/evals/runs", json={"suite": SUITE, "cases": [{"question": ""}]})
    assert bad_case.status_code == 422


async def test_a_suite_run_by_url_scores_as_the_in_process_run(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    import httpx2

    from evals.runner import InProcessBackend, RemoteBackend, Run, summarize
    from evals.suite import EvalCase, Suite

    app = clients["app"]
    suite = Suite.model_validate(SUITE)
    suite.cases = [EvalCase.model_validate(c) for c in CASES]
    remote = RemoteBackend("http://lore.test", clients["eve_key"], transport=httpx2.ASGITransport(app=app))
    try:
        by_url = await Run(suite, remote, tmp_path / "remote").execute()
    finally:
        await remote.close()
    in_process = await Run(suite, InProcessBackend(app.state.resources), tmp_path / "local").execute()
    assert [r.get("error") for r in by_url] == [None, None]
    assert summarize(suite, by_url)["metrics"]["hit@2"] == 1.0
    assert [r["metrics"] for r in by_url] == [r["metrics"] for r in in_process]


async def test_runs_cut_off_by_a_shutdown_are_recorded_interrupted(clients: dict[str, Any]) -> None:
    from api.evals import service
    from evals.suite import Suite

    app = clients["app"]
    resources = app.state.resources
    async with resources.sessions() as session:
        row = await service.create_run(
            session,
            suite=Suite.model_validate(SUITE),
            suite_yaml="",
            user_id=None,
            runs_dir=Path("/nonexistent"),
        )
        row.state = "running"
        await session.commit()
    app.state.eval_runs.ids.add(row.id)
    assert await app.state.eval_runs.interrupt_all(resources) == 1
    run = (await clients["eve"].get(f"/v1/evals/runs/{row.id}")).json()
    assert run["state"] == "error" and run["error"] == service.INTERRUPTED
