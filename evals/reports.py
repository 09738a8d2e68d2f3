"""Reports of a run or a comparison: JSON (everything), JUnit XML (for CI), and a self-contained
HTML page whose plots are inline SVG (no script, no network)."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from evals.runner import lower_is_better

JUDGED = (
    "faithfulness",
    "answer_relevancy",
    "context_precision",
    "context_recall",
    "answer_correctness",
    "g_eval",
)


def write_json(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path


def junit_xml(results: dict[str, Any]) -> str:
    """One test case per question and metric threshold (a question's own value against the bound),
    one per suite-level gate (which sets the exit code), and one per failed question."""
    summary = results["summary"]
    thresholds: dict[str, dict[str, float | None]] = results.get("suite", {}).get("thresholds", {})
    suite = ET.Element("testsuite", name=f"lore-eval.{summary['suite']}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(
        classname: str,
        name: str,
        *,
        failure: str | None = None,
        error: str | None = None,
        skipped: str | None = None,
        seconds: float = 0.0,
    ) -> None:
        element = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        counts["tests"] += 1
        if failure is not None:
            ET.SubElement(element, "failure", message=failure)
            counts["failures"] += 1
        elif error is not None:
            ET.SubElement(element, "error", message=error)
            counts["errors"] += 1
        elif skipped is not None:
            ET.SubElement(element, "skipped", message=skipped)
            counts["skipped"] += 1

    for record in results["cases"]:
        label = f"{record['case_id']}#{record['repeat']}: {record['question'][:80]}"
        seconds = float(record.get("timings", {}).get("wall_ms", 0.0)) / 1000
        if record.get("error"):
            case("questions", label, error=record["error"], seconds=seconds)
            continue
        if not thresholds:
            case("questions", label, seconds=seconds)
        for metric, bound in thresholds.items():
            value = record.get("metrics", {}).get(metric)
            name = f"{label} [{metric}]"
            if value is None:
                reason = record.get("not_measured", {}).get(metric, "not applicable to this question")
                case(f"questions.{metric}", name, skipped=f"not measured: {reason}", seconds=seconds)
                continue
            low, high = bound.get("min"), bound.get("max")
            if low is not None and value < low:
                case(f"questions.{metric}", name, failure=f"{value:.4f} < {low:g}", seconds=seconds)
            elif high is not None and value > high:
                case(f"questions.{metric}", name, failure=f"{value:.4f} > {high:g}", seconds=seconds)
            else:
                case(f"questions.{metric}", name, seconds=seconds)
    for gate in results.get("gates", []):
        case("gates", gate["name"], failure=None if gate["passed"] else gate["message"])
    for key, value in counts.items():
        suite.set(key, str(value))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- SVG plots -----------------------------------------------------------------------------------

_W, _H, _PAD = 320, 180, 32


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def histogram(
    values: Sequence[float],
    title: str,
    *,
    bins: int = 10,
    low: float | None = None,
    high: float | None = None,
) -> str:
    """An SVG histogram of ``values`` between ``low`` and ``high`` (default: their range)."""
    e = html.escape
    if not values:
        return (
            f'<svg class="plot" role="img" width="{_W}" height="{_H}"><title>{e(title)}</title>'
            f'<text x="10" y="20">{e(title)}: no values</text></svg>'
        )
    lo = min(values) if low is None else low
    hi = max(values) if high is None else high
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    top = max(counts)
    width = (_W - 2 * _PAD) / bins
    bars = []
    for i, c in enumerate(counts):
        h = (_H - 2 * _PAD) * c / top if top else 0
        x = _PAD + i * width
        y = _H - _PAD - h
        start = lo + (hi - lo) * i / bins
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width - 2:.1f}" height="{h:.1f}" fill="#4c78a8">'
            f"<title>{start:.3g}-{start + (hi - lo) / bins:.3g}: {c}</title></rect>"
        )
    return (
        f'<svg class="plot" role="img" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}">'
        f"<title>{e(title)}</title>"
        f'<text x="{_PAD}" y="16" font-size="12">{e(title)} (n={len(values)})</text>'
        + "".join(bars)
        + f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>'
        f'<text x="{_PAD}" y="{_H - 12}" font-size="10">{lo:.3g}</text>'
        f'<text x="{_W - _PAD}" y="{_H - 12}" font-size="10" text-anchor="end">{hi:.3g}</text>'
        "</svg>"
    )


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], title: str, *, signed: bool = False
) -> str:
    """Horizontal bars, one per label; ``signed`` centres zero (for deltas, red when negative)."""
    e = html.escape
    row = 16
    height = 28 + row * max(len(labels), 1)
    width = 520
    label_w = 220
    span = max((abs(v) for v in values if v is not None), default=1.0) or 1.0
    plot_w = width - label_w - 60
    zero = label_w + (plot_w / 2 if signed else 0)
    scale = (plot_w / 2 if signed else plot_w) / span
    parts = [
        f'<svg class="plot" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f"<title>{e(title)}</title>",
        f'<text x="4" y="14" font-size="12">{e(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 22 + i * row
        parts.append(f'<text x="4" y="{y + 11}" font-size="10">{e(label[:40])}</text>')
        if value is None:
            parts.append(f'<text x="{zero + 4}" y="{y + 11}" font-size="10">not measured</text>')
            continue
        length = abs(value) * scale
        x = zero - length if value < 0 else zero
        colour = "#e45756" if value < 0 and signed else "#4c78a8"
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(length, 0.5):.1f}" height="{row - 4}" fill="{colour}">'
            f"<title>{e(label)}: {value:.4f}</title></rect>"
            f'<text x="{max(x + length, zero) + 4:.1f}" y="{y + 11}" font-size="10">{value:.3f}</text>'
        )
    if signed:
        parts.append(f'<line x1="{zero}" y1="20" x2="{zero}" y2="{height}" stroke="#333"/>')
    parts.append("</svg>")
    return "".join(parts)


# -- HTML ----------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.pass{color:#2a7a2a;font-weight:bold}.fail{color:#b00;font-weight:bold}
.warn{background:#fff4e0;border:1px solid #e0a040;padding:.8em;margin:1em 0}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #eee;background:#fff}details{margin:.3em 0}code,pre{white-space:pre-wrap}
"""


def _head(*columns: str) -> str:
    return "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"


def _verdict(question: dict[str, Any]) -> str:
    if question["regressed"]:
        return "regressed: " + html.escape(", ".join(question["regressed"]))
    return "improved" if question["improved"] else ""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _gates_html(gates: list[dict[str, Any]]) -> str:
    if not gates:
        return "<p>No gates configured.</p>"
    rows = "".join(
        f'<tr><td>{html.escape(g["name"])}</td><td class="{"pass" if g["passed"] else "fail"}">'
        f"{'pass' if g['passed'] else 'FAIL'}</td><td>{html.escape(g['message'])}</td>"
        f"<td>{html.escape(_spread(g.get('spread')))}</td></tr>"
        for g in gates
    )
    return f"<table>{_head('gate', 'verdict', 'detail', 'spread over repeats')}{rows}</table>"


def _spread(spread: dict[str, float] | None) -> str:
    if not spread:
        return ""
    low, high = spread["min"], spread["max"]
    return f"mean {spread['mean']:.3f} ± {spread['stdev']:.3f} (min {low:.3f}, max {high:.3f})"


def _judge_html(judge: dict[str, Any] | None) -> str:
    if not judge:
        return ""
    parts = [
        f"<h2>Judge</h2><p>Model <code>{html.escape(str(judge.get('model')))}</code> at "
        f"<code>{html.escape(str(judge.get('endpoint')))}</code>.</p>"
    ]
    calibration = judge.get("calibration") or {}
    if calibration.get("warning"):
        parts.append(
            '<div class="warn"><strong>Judge agreement is poor.</strong> '
            f"{html.escape(calibration['warning'])}</div>"
        )
    if calibration.get("agreement"):
        rows = "".join(
            f"<tr><td>{html.escape(m)}</td><td>{_fmt(a.get('agreement'))}</td><td>{a.get('scored', 0)}</td>"
            f"<td>{a.get('not_measured', 0)}</td></tr>"
            for m, a in calibration["agreement"].items()
        )
        parts.append(
            f"<p>Calibration set: {calibration.get('size', 0)} labelled answers "
            "(correct, wrong, unsupported) "
            "made from the references by perturbation.</p>"
            f"<table>{_head('metric', 'agreement with labels', 'scored', 'not measured')}{rows}</table>"
        )
    return "".join(parts)


def html_report(results: dict[str, Any]) -> str:
    """The run's HTML report: gates, metrics (with judge agreement), plots, every question."""
    e = html.escape
    summary = results["summary"]
    records = results["cases"]
    agreement = ((results.get("judge") or {}).get("calibration") or {}).get("agreement", {})
    rows = []
    for name, value in summary["metrics"].items():
        detail = summary.get("metric_details", {}).get(name, {})
        reasons = "; ".join(f"{r} ({n})" for r, n in detail.get("not_measured_reasons", {}).items())
        judged = name in JUDGED
        agree = _fmt((agreement.get(name) or {}).get("agreement")) if judged else ""
        rows.append(
            f"<tr><td>{e(name)}{' (judged)' if judged else ''}</td><td>{_fmt(value, 4)}</td>"
            f"<td>{detail.get('measured', '')}</td><td>{detail.get('not_measured', '')}</td>"
            f"<td>{e(reasons)}</td><td>{agree}</td><td>{e(_spread(detail.get('spread')))}</td></tr>"
        )
    metric_table = (
        "<table><tr><th>metric</th><th>value</th><th>measured</th><th>not measured</th>"
        "<th>why not measured</th>"
        f"<th>judge agreement</th><th>spread over repeats</th></tr>{''.join(rows)}</table>"
    )
    names = [n for n in summary.get("metric_details", {}) if not lower_is_better(n)]
    distributions = "".join(
        histogram([r["metrics"][n] for r in records if n in r.get("metrics", {})], n, low=0.0, high=1.0)
        for n in names
    )
    tags = summary.get("by_tag", {})
    tag_plots = "".join(
        bar_chart(list(tags), [tags[t].get(n) for t in tags], f"{n} by tag") for n in names if tags
    )
    latencies = [
        float(r["timings"].get("total_ms", r["timings"].get("wall_ms", 0))) for r in records if "timings" in r
    ]
    latency = histogram(latencies, "latency (ms)", bins=12)
    question_rows = "".join(
        f"<tr><td>{e(r['question'])}<br><small>{e(', '.join(r.get('tags', [])))}</small></td>"
        f"<td>{e(str(r.get('answer') or r.get('error') or ''))[:600]}</td>"
        f"<td>{e(', '.join(f'{k}={v:.2f}' for k, v in r.get('metrics', {}).items()))}</td>"
        f"<td>{e('; '.join(f'{k}: {v}' for k, v in r.get('not_measured', {}).items()))}</td></tr>"
        for r in records
    )
    lat = summary["latency_ms"]
    body = (
        f"<h1>Lore eval: {e(summary['suite'])}</h1>"
        f"<p>Corpus <code>{e(summary['corpus'])}</code>, k={summary['k']}, mode {e(summary['mode'])}, "
        f"{summary['cases']} questions x {summary['repeats']} repeat(s), {summary['failed']} failed. "
        f"Finished {e(summary.get('finished_at', ''))}.</p>"
        f"<h2>Gates</h2>{_gates_html(results.get('gates', []))}"
        f"{_judge_html(results.get('judge'))}"
        f"<h2>Metrics</h2>{metric_table}"
        f"<p>Latency p50 {_fmt(lat['p50'], 0)} ms, p95 {_fmt(lat['p95'], 0)} ms, "
        f"p99 {_fmt(lat['p99'], 0)} ms; "
        f"tokens in {_fmt(summary['tokens']['in_per_question'], 0)}, "
        f"out {_fmt(summary['tokens']['out_per_question'], 0)} per question.</p>"
        f'<h2>Metric distributions</h2><div class="plots" id="distributions">{distributions}</div>'
        f'<h2>By tag</h2><div class="plots" id="tags">{tag_plots or "<p>No tags.</p>"}</div>'
        f'<h2>Latency</h2><div class="plots" id="latency">{latency}</div>'
        f"<h2>Questions</h2><table>{_head('question', 'answer', 'metrics', 'not measured')}"
        f"{question_rows}</table>"
    )
    return _page(f"Lore eval {summary['suite']}", body)


def _deltas_text(deltas: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{n} {d['a']:.2f}->{d['b']:.2f}" for n, d in deltas.items())


def compare_html(comparison: dict[str, Any]) -> str:
    """The comparison's HTML: gates, metric deltas, per-question deltas with regressions first."""
    e = html.escape
    metric_rows = "".join(
        f"<tr><td>{e(n)}</td><td>{_fmt(d['a'], 4)}</td><td>{_fmt(d['b'], 4)}</td>"
        f"<td>{_fmt(d['delta'], 4)}</td>"
        f'<td class="{"fail" if d["worse"] else ""}">{"worse" if d["worse"] else ""}</td></tr>'
        for n, d in comparison["metrics"].items()
    )
    questions = comparison["questions"]
    plots = []
    metric_names = sorted({n for q in questions for n in q["deltas"] if not lower_is_better(n)})
    for name in metric_names:
        picked = [q for q in questions if name in q["deltas"]][:40]
        plots.append(
            bar_chart(
                [q["question"] for q in picked],
                [q["deltas"][name]["delta"] for q in picked],
                f"{name}: per-question change (B - A)",
                signed=True,
            )
        )
    rows = "".join(
        f'<tr><td class="{"fail" if q["regressed"] else ""}">{_verdict(q)}</td>'
        f"<td>{e(q['question'])}</td>"
        f"<td>{e(_deltas_text(q['deltas']))}</td>"
        f"<td>{e(str(q['answer_a'] or ''))[:300]}</td><td>{e(str(q['answer_b'] or ''))[:300]}</td></tr>"
        for q in questions
    )
    body = (
        f"<h1>Lore eval comparison: {e(comparison['a']['suite'])} (A) vs "
        f"{e(comparison['b']['suite'])} (B)</h1>"
        f"<p>{comparison['regressed']} questions regressed, {comparison['improved']} improved.</p>"
        f"<h2>Gates</h2>{_gates_html(comparison['gates'])}"
        "<h2>Metrics</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>B - A</th><th></th></tr>"
        f"{metric_rows}</table>"
        '<h2>Per-question deltas</h2><div class="plots" id="deltas">'
        f"{''.join(plots) or '<p>No common metrics.</p>'}</div>"
        "<h2>Questions (regressed first)</h2>"
        f"<table>{_head('verdict', 'question', 'metrics A->B', 'answer A', 'answer B')}{rows}</table>"
    )
    return _page("Lore eval comparison", body)


def write_run_reports(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write results.json, junit.xml and report.html under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_json(results, out_dir / "results.json"),
        "junit": out_dir / "junit.xml",
        "html": out_dir / "report.html",
    }
    paths["junit"].write_text(junit_xml(results))
    paths["html"].write_text(html_report(results))
    return paths
