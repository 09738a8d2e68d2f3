"""`lore eval run` end to end with the real models: the sample suite, and regression gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def _lore(*args: str, data_dir: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env |= {"LORE_DATA_DIR": str(data_dir), **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_eval_run_writes_results_junit_and_html(tmp_path: Path) -> None:
    # The shipped small model: answer.mode=auto extracts, so the run costs no LLM time.
    done = _lore(
        "eval", "run", "data/evals/sample.yaml", "--out", str(tmp_path / "out"), data_dir=tmp_path / "lore"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = results["summary"]
    assert summary["cases"] == len(results["cases"]) >= 10
    metrics = summary["metrics"]
    assert {"hit@4", "mrr", "ndcg@10", "token_f1", "semantic_similarity", "refusal_accuracy"} <= set(metrics)
    # the sample corpus is small and its questions specific: retrieval should find nearly all
    assert metrics["hit@4"] >= 0.8
    assert 0 < metrics["mrr"] <= 1
    assert metrics["latency_p50_ms"] > 0
    case = results["cases"][0]
    assert case["answer_kind"] == "extracted" and case["citations"] and not case["usage"]
    assert {"question", "answer", "citations", "retrieved", "metrics", "timings", "usage"} <= set(case)
    assert summary["ingest"]["documents_new"] == 10
    assert (tmp_path / "out" / "junit.xml").read_text().startswith("<?xml")
    assert "<svg" in (tmp_path / "out" / "report.html").read_text()


SUITE = """
name: handbook-retrieval
dataset: {sample}
corpus: default
ingest: [{corpus}]
mode: retrieve
k: {k}
settings:
  retrieval: {{mode: {mode}}}
# One question's two best chunks tie in hybrid RRF and come back in either order from run to run
# (MRR 0.975 or 0.95): the limits allow that flip; k=1 without hybrid costs about 0.1.
regression:
  max_drop: {{mrr: 0.05, ndcg@10: 0.05}}
"""


def _suite(tmp_path: Path, name: str, *, k: int, mode: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    sample, corpus = REPO / "data" / "evals" / "sample.jsonl", REPO / "data" / "corpus"
    path.write_text(SUITE.format(sample=sample, corpus=corpus, k=k, mode=mode))
    return path


def test_a_worse_setting_fails_its_regression_gate_and_the_unchanged_one_passes(tmp_path: Path) -> None:
    data_dir = tmp_path / "lore"
    good, worse = _suite(tmp_path, "good", k=4, mode="hybrid"), _suite(tmp_path, "worse", k=1, mode="dense")
    baseline = _lore("eval", "run", str(good), "--out", str(tmp_path / "baseline"), data_dir=data_dir)
    assert baseline.returncode == 0, baseline.stderr

    same = _lore(
        "eval", "run", str(good), "--out", str(tmp_path / "same"), "--baseline", str(tmp_path / "baseline"),
        data_dir=data_dir,
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert "FAIL" not in same.stdout

    regressed = _lore(
        "eval", "run", str(worse), "--out", str(tmp_path / "worse"), "--baseline", str(tmp_path / "baseline"),
        data_dir=data_dir,
    )  # fmt: skip
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    results = json.loads((tmp_path / "worse" / "results.json").read_text())
    failed = [g["metric"] for g in results["gates"] if not g["passed"]]
    assert "mrr" in failed

    compared = _lore(
        "eval", "compare", str(tmp_path / "baseline"), str(tmp_path / "worse"),
        "--out", str(tmp_path / "cmp"), data_dir=data_dir,
    )  # fmt: skip
    assert compared.returncode == 1, compared.stdout + compared.stderr
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    flags = [bool(q["regressed"]) for q in comparison["questions"]]
    assert flags == sorted(flags, reverse=True) and flags[0]  # regressed questions come first
    assert (
        _lore(
            "eval", "compare", str(tmp_path / "baseline"), str(tmp_path / "same"), data_dir=data_dir
        ).returncode
        == 0
    )


def test_a_missing_suite_is_a_usage_error(tmp_path: Path) -> None:
    done = _lore("eval", "run", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o"), data_dir=tmp_path)
    assert done.returncode == 2
    assert "no suite file" in done.stderr
