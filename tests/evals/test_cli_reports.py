"""`lore eval report` and `lore eval compare` on hand-made runs (no models): files, IDs, exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from evals import reports
from tests.evals.test_gates_and_reports import _record, _run, _suite


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LORE_EVALS__RUNS_DIR", str(tmp_path / "runs"))
    from core.settings import get_settings

    get_settings.cache_clear()
    suite = _suite(regression={"max_drop": {"hit@4": 0.1}})
    before = _run([_record("1", "first", 1.0, 0.5), _record("2", "second", 1.0, 0.9)], suite)
    after = _run([_record("1", "first", 1.0, 0.5), _record("2", "second", 0.0, 0.1)], suite)
    for name, results in (("before", before), ("after", after)):
        results["run"] = {"id": name, "dir": str(tmp_path / "runs" / name)}
        reports.write_json(results, tmp_path / "runs" / name / "results.json")
    yield tmp_path
    get_settings.cache_clear()


def test_report_writes_the_html_again(runs: Path) -> None:
    done = CliRunner().invoke(
        app, ["eval", "report", str(runs / "runs" / "after"), "--out", str(runs / "r.html")]
    )
    assert done.exit_code == 0, done.output
    assert "<svg" in (runs / "r.html").read_text()


def test_compare_by_run_id_lists_regressions_first_and_fails_its_gate(runs: Path) -> None:
    done = CliRunner().invoke(app, ["eval", "compare", "before", "after", "--out", str(runs / "cmp")])
    assert done.exit_code == 1, done.output
    assert done.output.index("regressed second") < done.output.index("FAIL")
    assert (runs / "cmp" / "comparison.html").is_file()
    relaxed = CliRunner().invoke(app, ["eval", "compare", "before", "after", "--max-drop", "hit@4=0.6"])
    assert relaxed.exit_code == 0, relaxed.output


def test_unknown_runs_and_bad_limits_are_usage_errors(runs: Path) -> None:
    assert CliRunner().invoke(app, ["eval", "compare", "before", "nowhere"]).exit_code == 2
    assert CliRunner().invoke(app, ["eval", "report", "nowhere"]).exit_code == 2
    assert CliRunner().invoke(app, ["eval", "compare", "before", "after", "--max-drop", "mrr"]).exit_code == 2
