"""The pytest helper teams put in their CI: a suite as a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from evals.testing import GateFailed, assert_gates_pass, run_suite

REPO = Path(__file__).resolve().parents[2]


def test_failed_gates_are_listed_in_the_assertion() -> None:
    assert_gates_pass({"gates": [{"name": "mrr min 0.5", "passed": True, "message": "ok"}]})
    with pytest.raises(GateFailed, match=r"mrr min 0\.9: mrr = 0\.5000, needs >= 0\.9"):
        assert_gates_pass(
            {
                "gates": [
                    {"name": "hit@4 min 0.5", "passed": True, "message": "fine"},
                    {"name": "mrr min 0.9", "passed": False, "message": "mrr = 0.5000, needs >= 0.9"},
                ]
            }
        )


@pytest.mark.models
def test_a_suite_runs_as_a_test(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: ci\ndataset: {REPO / 'data' / 'evals' / 'sample.jsonl'}\ncorpus: default\n"
        f"ingest: [{REPO / 'data' / 'corpus'}]\nmode: retrieve\nk: 4\n"
        "thresholds: {hit@4: 0.5, mrr: 1.01}\n"
    )
    results = run_suite(
        suite, out_dir=tmp_path / "out", limit=3, settings=Settings(data_dir=tmp_path / "lore")
    )
    assert results["summary"]["cases"] == 3
    assert (tmp_path / "out" / "junit.xml").is_file()
    with pytest.raises(GateFailed, match="mrr"):  # an MRR above 1 cannot be reached
        assert_gates_pass(results)
