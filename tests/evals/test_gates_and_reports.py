"""Gates, comparison and reports on hand-made runs (no models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from evals import gates, reports
from evals.compare import compare
from evals.runner import summarize
from evals.suite import Regression, Suite, Threshold


def _suite(**overrides: Any) -> Suite:
    return Suite.model_validate({"name": "t", "dataset": "d.jsonl", "corpus": "c", **overrides})


def _record(
    case_id: str, question: str, hit: float, f1: float, *, repeat: int = 0, ms: float = 100.0
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "repeat": repeat,
        "question": question,
        "reference_documents": ["doc"],
        "tags": ["easy" if hit else "hard"],
        "answer": f"answer {f1}",
        "metrics": {"hit@4": hit, "token_f1": f1},
        "not_measured": {"faithfulness": "unparseable reply"} if not hit else {},
        "timings": {"total_ms": ms, "wall_ms": ms},
        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
    }


def _run(records: list[dict[str, Any]], suite: Suite) -> dict[str, Any]:
    summary = summarize(suite, records)
    checked = gates.check_thresholds(summary, suite.thresholds)
    return {
        "run": {"id": "r"},
        "suite": suite.model_dump(mode="json"),
        "summary": summary,
        "gates": [g.as_dict() for g in checked],
        "passed": gates.passed(checked),
        "cases": records,
    }


def test_summary_counts_not_measured_with_reasons_and_never_as_zero() -> None:
    suite = _suite(metrics=["hit@4", "faithfulness"])
    summary = summarize(suite, [_record("a", "qa", 1.0, 1.0), _record("b", "qb", 0.0, 0.5)])
    assert summary["metrics"]["hit@4"] == 0.5
    assert summary["metrics"]["faithfulness"] is None
    assert summary["metric_details"]["faithfulness"] == {
        "measured": 0,
        "not_measured": 1,
        "not_measured_reasons": {"unparseable reply": 1},
        "spread": None,
    }
    assert summary["by_tag"]["easy"]["hit@4"] == 1.0
    assert summary["tokens"]["in_per_question"] == 100


def test_a_metric_never_measured_is_listed_with_its_count() -> None:
    summary = summarize(_suite(), [_record("a", "qa", 0.0, 1.0), _record("b", "qb", 0.0, 0.5)])
    assert summary["metrics"]["faithfulness"] is None
    assert summary["metric_details"]["faithfulness"]["not_measured"] == 2


def test_thresholds_pass_and_fail_and_an_unmeasured_metric_fails() -> None:
    summary = {"metrics": {"hit@4": 0.7, "latency_p95_ms": 900.0, "faithfulness": None}}
    checked = gates.check_thresholds(
        summary,
        {
            "hit@4": Threshold(min=0.6),
            "latency_p95_ms": Threshold(max=500),
            "faithfulness": Threshold(min=0.1),
        },
    )
    assert [g.passed for g in checked] == [True, False, False]
    assert "not measured" in checked[2].message


def test_regression_gate_reads_latency_the_other_way_round() -> None:
    base = {"metrics": {"mrr": 0.80, "latency_p95_ms": 1000.0}}
    worse = {"metrics": {"mrr": 0.70, "latency_p95_ms": 900.0}}
    rules = Regression(max_drop={"mrr": 0.05, "latency_p95_ms": 50})
    checked = gates.check_regressions(worse, base, rules)
    assert [(g.metric, g.passed) for g in checked] == [("mrr", False), ("latency_p95_ms", True)]
    assert gates.passed(gates.check_regressions(base, base, rules))


def test_repeats_gate_on_the_mean_and_report_spread() -> None:
    suite = _suite(repeats=3, thresholds={"token_f1": 0.6})
    records = [_record("a", "qa", 1.0, f1, repeat=r) for r, f1 in enumerate((0.62, 0.58, 0.61))]
    run = _run(records, suite)
    [gate] = run["gates"]
    assert gate["passed"]  # mean 0.603: one repeat at 0.58 does not flip it
    assert gate["spread"]["min"] == 0.58


def test_compare_lists_regressed_questions_first_and_fails_its_gate(tmp_path: Path) -> None:
    suite = _suite(thresholds={"hit@4": 0.5}, regression={"max_drop": {"hit@4": 0.1}})
    a = _run(
        [_record("1", "stays", 1.0, 0.5), _record("2", "drops", 1.0, 0.9), _record("3", "rises", 0.0, 0.1)],
        suite,
    )
    b = _run(
        [_record("1", "stays", 1.0, 0.5), _record("2", "drops", 0.0, 0.2), _record("3", "rises", 1.0, 0.8)],
        suite,
    )
    result = compare(a, b)
    assert [q["question"] for q in result["questions"]] == ["drops", "stays", "rises"]
    assert result["questions"][0]["regressed"] == ["hit@4", "token_f1"]
    assert result["regressed"] == 1 and result["improved"] == 1
    assert result["passed"]  # hit@4 mean is unchanged (2/3 both): the gate holds
    worse = _run(
        [_record("1", "stays", 0.0, 0.5), _record("2", "drops", 0.0, 0.2), _record("3", "rises", 0.0, 0.8)],
        suite,
    )
    assert not compare(a, worse)["passed"]
    page = reports.compare_html(compare(a, worse))
    assert page.index("drops") < page.index("rises")
    assert "<svg" in page and "<script" not in page


def test_junit_has_a_case_per_question_and_threshold_and_one_per_gate() -> None:
    suite = _suite(thresholds={"hit@4": 0.5, "token_f1": 0.3})
    run = _run([_record("a", "qa", 1.0, 1.0), _record("b", "qb", 0.0, 0.1)], suite)
    root = ET.fromstring(reports.junit_xml(run))
    suite_el = root.find("testsuite")
    assert suite_el is not None
    cases = suite_el.findall("testcase")
    assert len(cases) == 2 * 2 + 2
    assert suite_el.get("tests") == "6"
    assert suite_el.get("failures") == str(sum(1 for c in cases if c.find("failure") is not None))
    gate_cases = [c for c in cases if c.get("classname") == "gates"]
    assert len(gate_cases) == 2


def test_html_report_is_self_contained_with_plots(tmp_path: Path) -> None:
    suite = _suite(thresholds={"hit@4": 0.9})
    run = _run([_record("a", "qa <b>", 1.0, 1.0), _record("b", "qb", 0.0, 0.1, ms=300)], suite)
    run["judge"] = {
        "model": "smollm2",
        "endpoint": "http://x/v1",
        "calibration": {
            "size": 3,
            "agreement": {"g_eval": {"agreement": 0.33, "scored": 3, "not_measured": 0}},
            "warning": "not trustworthy",
        },
    }
    paths = reports.write_run_reports(run, tmp_path)
    page = paths["html"].read_text()
    assert "qa &lt;b&gt;" in page  # questions are escaped
    for plot in ('id="distributions"', 'id="tags"', 'id="latency"'):
        assert plot in page
    assert page.count("<svg") >= 4
    assert "http://" not in page.replace("http://x/v1", "").replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page
    assert "FAIL" in page and "Judge agreement is poor" in page
    assert (tmp_path / "results.json").is_file() and (tmp_path / "junit.xml").is_file()
