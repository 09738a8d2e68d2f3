"""`lore eval run` on the sample suite, end to end with the real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def test_eval_run_writes_hit_at_k_and_mrr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    # short answers keep the run quick; retrieval metrics do not depend on them
    env |= {"LORE_DATA_DIR": str(tmp_path / "lore"), "LORE_LLM__MAX_TOKENS": "24"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "eval",
            "run",
            "data/evals/sample.yaml",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = results["summary"]
    assert summary["cases"] == len(results["cases"]) >= 10
    assert set(summary["metrics"]) == {"hit@4", "mrr"}
    # the sample corpus is small and its questions specific: retrieval should find nearly all
    assert summary["metrics"]["hit@4"] >= 0.8
    assert 0 < summary["metrics"]["mrr"] <= 1
    case = results["cases"][0]
    assert {"question", "answer", "citations", "retrieved", "hit", "reciprocal_rank", "timings"} <= set(case)
    assert summary["ingest"]["documents_new"] == 10
