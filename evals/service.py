"""Suite runs end to end: ingest, answer and score every case, judge, gate, report.

The CLI and the API both call these; they know nothing of terminals or HTTP.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.resources import Resources
from core.settings import Settings
from evals import datasets, gates, reports
from evals.runner import Backend, CaseProgress, Embed, InProcessBackend, RemoteBackend, Run, summarize
from evals.suite import Regression, Suite

RESULTS_FILE = "results.json"
CALIBRATION_FILE = "calibration.json"


def load_run(ref: str | Path, *, runs_dir: Path | None = None) -> dict[str, Any]:
    """A finished run's results: ``ref`` is its directory, its results.json, or its ID under ``runs_dir``."""
    path = Path(ref)
    candidates = [path, path / RESULTS_FILE]
    if runs_dir is not None:
        candidates.append(runs_dir / str(ref) / RESULTS_FILE)
    for candidate in candidates:
        if candidate.is_file():
            try:
                results: dict[str, Any] = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{candidate} is not a run's results: {exc}") from exc
            return results
    raise InvalidInputError(f"no eval run at {ref} (a run directory with {RESULTS_FILE}, or a run ID)")


def run_info(settings: Settings, suite: Suite, out_dir: Path, *, target: str) -> dict[str, Any]:
    """What the run ran with: enough to tell two runs apart in a comparison."""
    return {
        "id": out_dir.resolve().name,
        "dir": str(out_dir.resolve()),
        "target": target,
        "suite_file": str(suite.source_path) if suite.source_path else None,
        "retrieval": settings.retrieval.model_dump(mode="json"),
        "llm_model": settings.llm.model if settings.llm.base_url else "in-process llama.cpp",
        "embedding_model": settings.embedding.model or "all-MiniLM-L6-v2",
        "started_at": datetime.now(UTC).isoformat(),
    }


async def ingest_suite(resources: Resources, suite: Suite, *, progress: Any = None) -> dict[str, Any] | None:
    """Ingest the suite's paths and its dataset's documents (unchanged documents are skipped)."""
    from ingestion.pipeline import ingest_sources
    from ingestion.sources import Source, discover

    sources: list[Source] = discover(suite.ingest) if suite.ingest else []
    if suite.dataset.ingest_documents:
        sources += datasets.load_documents(suite.dataset)
    if not sources:
        return None
    summary = await ingest_sources(resources, sources, corpus=suite.corpus, progress=progress)
    return summary.as_dict()


def finish(
    suite: Suite,
    records: list[dict[str, Any]],
    *,
    info: dict[str, Any],
    out_dir: Path,
    baseline: str | Path | None = None,
    runs_dir: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise, gate (thresholds, and regressions against the baseline when one is named), and
    write results.json, junit.xml and report.html."""
    summary = summarize(suite, records, extra={k: v for k, v in (extra or {}).items() if k != "judge"})
    checked = gates.check_thresholds(summary, suite.thresholds)
    baseline_ref = baseline or suite.regression.baseline
    if baseline_ref is not None:
        if suite.regression.baseline and baseline is None and suite.source_path is not None:
            # A baseline named in the suite is relative to the suite file.
            baseline_ref = suite.source_path.parent / suite.regression.baseline
        base = load_run(baseline_ref, runs_dir=runs_dir)
        checked += gates.check_regressions(
            summary, base["summary"], suite.regression, baseline_name=str(baseline_ref)
        )
    results = {
        "run": info | {"finished_at": datetime.now(UTC).isoformat()},
        "suite": suite.model_dump(mode="json"),
        "summary": summary,
        "gates": [g.as_dict() for g in checked],
        "passed": gates.passed(checked),
        "judge": (extra or {}).get("judge"),
        "cases": records,
    }
    reports.write_run_reports(results, out_dir)
    return results


async def run_in_process(
    resources: Resources,
    suite: Suite,
    *,
    out_dir: Path,
    baseline: str | Path | None = None,
    ingest_progress: Any = None,
    progress: CaseProgress | None = None,
) -> dict[str, Any]:
    """Run ``suite`` through Lore's own services over ``resources`` (opened with the suite's settings)."""
    info = run_info(resources.settings, suite, out_dir, target="in-process")
    ingested = await ingest_suite(resources, suite, progress=ingest_progress)
    extra: dict[str, Any] = {"ingest": ingested}
    records = await _answer_all(
        suite,
        InProcessBackend(resources),
        resources.settings,
        out_dir,
        resources.embedder.embed_query,
        progress,
        extra,
    )
    return finish(
        suite,
        records,
        info=info,
        out_dir=out_dir,
        baseline=baseline,
        runs_dir=resources.settings.eval_runs_dir,
        extra=extra,
    )


async def _answer_all(
    suite: Suite,
    backend: Backend,
    settings: Settings,
    out_dir: Path,
    embed: Embed,
    progress: CaseProgress | None,
    extra: dict[str, Any],
) -> list[dict[str, Any]]:
    """Every case's record, judged when the suite turns the judge on (its calibration goes in ``extra``)."""
    if not (suite.judge.enabled and suite.mode == "answer"):
        return await Run(suite, backend, out_dir, embed, None, progress).execute()
    from evals import judge as judging

    client, case_judge = judging.open_judge(suite, settings, embed)
    try:
        extra["judge"] = {
            "endpoint": client.base_url,
            "model": client.model,
            "metrics": suite.judge.metrics,
            "calibration": await _calibration(judging, case_judge, suite, out_dir, model=client.model),
        }
        return await Run(suite, backend, out_dir, embed, case_judge, progress).execute()
    finally:
        await client.close()


async def _calibration(judging: Any, judge: Any, suite: Suite, out_dir: Path, *, model: str) -> Any:
    """The judge's calibration, scored once per run directory (a resumed run reuses it)."""
    saved = _read_saved(out_dir / CALIBRATION_FILE)
    if saved is not None:
        return saved
    calibration = await judging.calibrate(judge, suite.judge, suite.cases, model=model)
    reports.write_json(calibration, out_dir / CALIBRATION_FILE)
    return calibration


def _read_saved(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


async def run_remote(
    settings: Settings,
    suite: Suite,
    *,
    url: str,
    token: str | None,
    out_dir: Path,
    baseline: str | Path | None = None,
    progress: CaseProgress | None = None,
) -> dict[str, Any]:
    """Run ``suite`` against a Lore server at ``url``; the corpus must already be ingested there."""
    import asyncio

    from core.components.embedding import Embedder

    info = run_info(settings, suite, out_dir, target=url)
    embedder = await asyncio.to_thread(Embedder, settings.embedding)
    backend = RemoteBackend(url, token)
    extra: dict[str, Any] = {}
    try:
        records = await _answer_all(suite, backend, settings, out_dir, embedder.embed_query, progress, extra)
    finally:
        await backend.close()
    return finish(
        suite,
        records,
        info=info,
        out_dir=out_dir,
        baseline=baseline,
        runs_dir=settings.eval_runs_dir,
        extra=extra,
    )


def regression_rules(suite_regression: Regression, max_drop: dict[str, float]) -> Regression:
    """The suite's regression limits, with limits given on the command line taking precedence."""
    return Regression(baseline=suite_regression.baseline, max_drop=suite_regression.max_drop | max_drop)
