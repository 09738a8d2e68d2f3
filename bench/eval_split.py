"""Eval runs side by side, split by tag: for the SEC 10-Q suite, by Source Chunk Type (table, text)
and Question Type (single-doc single-chunk, single-doc multi-chunk, multi-doc).

Reads each run directory's results.json (``lore eval run SUITE --out DIR``) and prints, for every
tag, each metric in every run and the change from the first run, and the seconds each run's ingest took.

    lore eval run evals/suites/sec10q.yaml --out runs/before      # on the code before a change
    lore eval run evals/suites/sec10q.yaml --out runs/after
    python bench/eval_split.py runs/before runs/after
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

METRICS = ("hit@4", "mrr", "recall@4", "token_f1", "semantic_similarity", "refusal_accuracy")


def _summary(run: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run / "results.json").read_text())["summary"]
    return summary


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="Run directories, the baseline first.")
    parser.add_argument("--metrics", nargs="*", default=list(METRICS))
    args = parser.parse_args()
    summaries = [_summary(run) for run in args.runs]
    names = [run.name for run in args.runs]
    tags = ["(all)", *sorted({t for s in summaries for t in s.get("by_tag", {})})]
    for name, summary in zip(names, summaries, strict=True):
        ingest = summary.get("ingest") or {}
        print(f"{name}: ingest {ingest.get('seconds')} s, {ingest.get('chunks_embedded')} chunks")
    header = ["tag", "cases", "metric", *names, *(f"{n} - {names[0]}" for n in names[1:])]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for tag in tags:
        parts = [
            {"cases": s.get("cases"), **s.get("metrics", {})}
            if tag == "(all)"
            else s.get("by_tag", {}).get(tag, {})
            for s in summaries
        ]
        cases = parts[0].get("cases", "")
        for metric in args.metrics:
            values = [_value(p, metric) for p in parts]
            if all(v is None for v in values):
                continue
            base = values[0]
            deltas = ["n/a" if v is None or base is None else f"{v - base:+.3f}" for v in values[1:]]
            print(f"| {tag} | {cases} | {metric} | " + " | ".join([*map(_cell, values), *deltas]) + " |")


def _value(part: dict[str, Any], metric: str) -> float | None:
    value = part.get(metric)
    if isinstance(value, dict):
        value = value.get("mean", value.get("value"))
    return float(value) if isinstance(value, int | float) else None


if __name__ == "__main__":
    main()
