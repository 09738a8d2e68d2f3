"""Gates: absolute thresholds and regression limits against a baseline run (pure).

A metric measured on repeats is gated on its mean over the repeats, and its spread is shown
beside the verdict, so one noisy judge score does not flip a gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evals.runner import lower_is_better
from evals.suite import Regression, Threshold


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    metric: str
    kind: str  # threshold | regression
    value: float | None
    bound: float
    passed: bool
    message: str
    spread: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_thresholds(summary: dict[str, Any], thresholds: dict[str, Threshold]) -> list[Gate]:
    """One gate per bound; a metric that was not measured fails its gate (it proves nothing)."""
    gates = []
    for metric, threshold in thresholds.items():
        value = summary["metrics"].get(metric)
        spread = (summary.get("metric_details", {}).get(metric) or {}).get("spread")
        for side, bound in (("min", threshold.min), ("max", threshold.max)):
            if bound is None:
                continue
            if value is None:
                passed, message = False, f"{metric} was not measured"
            elif side == "min":
                passed, message = value >= bound, f"{metric} = {value:.4f}, needs >= {bound:g}"
            else:
                passed, message = value <= bound, f"{metric} = {value:.4f}, needs <= {bound:g}"
            gates.append(
                Gate(f"{metric} {side} {bound:g}", metric, "threshold", value, bound, passed, message, spread)
            )
    return gates


def check_regressions(
    summary: dict[str, Any],
    baseline: dict[str, Any],
    regression: Regression,
    *,
    baseline_name: str = "baseline",
) -> list[Gate]:
    """One gate per metric with a regression limit: it fails when it worsened by more than the limit."""
    gates = []
    for metric, limit in regression.max_drop.items():
        value = summary["metrics"].get(metric)
        before = baseline["metrics"].get(metric)
        spread = (summary.get("metric_details", {}).get(metric) or {}).get("spread")
        if value is None or before is None:
            gates.append(
                Gate(
                    f"{metric} vs {baseline_name}",
                    metric,
                    "regression",
                    value,
                    limit,
                    False,
                    f"{metric} was not measured in {'this run' if value is None else baseline_name}",
                    spread,
                )
            )
            continue
        worse = (value - before) if lower_is_better(metric) else (before - value)
        passed = worse <= limit + 1e-12
        message = f"{metric} {before:.4f} -> {value:.4f} ({value - before:+.4f}; may worsen by {limit:g})"
        gates.append(
            Gate(f"{metric} vs {baseline_name}", metric, "regression", value, limit, passed, message, spread)
        )
    return gates


def passed(gates: list[Gate]) -> bool:
    return all(g.passed for g in gates)
