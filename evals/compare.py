"""Run-to-run comparison: metric deltas, per-question deltas with regressions first (pure)."""

from __future__ import annotations

from typing import Any

from evals import metrics
from evals.gates import Gate, check_regressions
from evals.runner import lower_is_better
from evals.suite import Regression

# Changes smaller than this are noise in float sums, not regressions.
_EPSILON = 1e-9


def _per_case(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each case's record (question, answer) with its metrics averaged over repeats."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in results["cases"]:
        grouped.setdefault(record["case_id"], []).append(record)
    out = {}
    for case_id, records in grouped.items():
        names = {n for r in records for n in r.get("metrics", {})}
        out[case_id] = {
            "question": records[0]["question"],
            "answer": records[0].get("answer"),
            "tags": records[0].get("tags", []),
            "metrics": {n: metrics.mean(r.get("metrics", {}).get(n) for r in records) for n in names},
        }
    return out


def worsening(metric: str, before: float, after: float) -> float:
    """How much worse ``after`` is than ``before`` (negative: better), in the metric's own units."""
    return (after - before) if lower_is_better(metric) else (before - after)


def compare(
    base: dict[str, Any], new: dict[str, Any], *, regression: Regression | None = None, base_name: str = "A"
) -> dict[str, Any]:
    """Compare run ``new`` with run ``base``; regression gates use ``regression`` (default: new's suite's)."""
    rules = regression or Regression.model_validate(new.get("suite", {}).get("regression") or {})
    summary_deltas = {}
    for name in sorted(set(base["summary"]["metrics"]) | set(new["summary"]["metrics"])):
        a, b = base["summary"]["metrics"].get(name), new["summary"]["metrics"].get(name)
        summary_deltas[name] = {
            "a": a,
            "b": b,
            "delta": None if a is None or b is None else b - a,
            "worse": None if a is None or b is None else worsening(name, a, b) > _EPSILON,
        }
    a_cases, b_cases = _per_case(base), _per_case(new)
    questions = []
    for case_id in b_cases.keys() & a_cases.keys():
        a, b = a_cases[case_id], b_cases[case_id]
        deltas = {}
        for name in sorted(set(a["metrics"]) & set(b["metrics"])):
            va, vb = a["metrics"][name], b["metrics"][name]
            if va is not None and vb is not None:
                deltas[name] = {"a": va, "b": vb, "delta": vb - va, "worse_by": worsening(name, va, vb)}
        # Latency varies from run to run: a question "regressed" when an answer metric fell.
        regressed = sorted(
            n for n, d in deltas.items() if d["worse_by"] > _EPSILON and not lower_is_better(n)
        )
        improved = sorted(
            n for n, d in deltas.items() if d["worse_by"] < -_EPSILON and not lower_is_better(n)
        )
        questions.append(
            {
                "case_id": case_id,
                "question": b["question"],
                "tags": b["tags"],
                "answer_a": a["answer"],
                "answer_b": b["answer"],
                "deltas": deltas,
                "regressed": regressed,
                "improved": improved,
                "worst": max((deltas[n]["worse_by"] for n in regressed), default=0.0),
            }
        )
    questions.sort(key=lambda q: (not q["regressed"], -q["worst"], bool(q["improved"]), q["question"]))
    gates: list[Gate] = check_regressions(new["summary"], base["summary"], rules, baseline_name=base_name)
    return {
        "a": {"suite": base["summary"]["suite"], "run": base.get("run", {})},
        "b": {"suite": new["summary"]["suite"], "run": new.get("run", {})},
        "metrics": summary_deltas,
        "questions": questions,
        "regressed": sum(1 for q in questions if q["regressed"]),
        "improved": sum(1 for q in questions if q["improved"] and not q["regressed"]),
        "only_in_a": len(a_cases.keys() - b_cases.keys()),
        "only_in_b": len(b_cases.keys() - a_cases.keys()),
        "gates": [g.as_dict() for g in gates],
        "passed": all(g.passed for g in gates),
    }
