"""Answer modes compared on an eval suite: generate (the LLM drafts, verification checks), extract
(the sources' own sentences), and auto, on the same corpus and questions.

Each mode runs the suite through Lore's own services (``evals.service.run_in_process``, cache off)
and prints, per mode:

- answered: the share of answerable questions answered (not refused);
- refused: the share of unanswerable questions refused;
- token F1 and semantic similarity to the reference answers (answerable questions, refusals count 0);
- cited: the share of answerable questions whose citations include a reference document;
- dropped: sentences verification removed, per question;
- unbacked: delivered sentences holding a specific that no source they cite holds (must be 0),
  re-checked from the recorded citations by ``retrieval.verification.unbacked_specifics``;
- first token and total time, median, in ms.

    python bench/answer_modes.py evals/suites/single_topic_web.yaml --split test
    python bench/answer_modes.py data/evals/sample.yaml --modes generate,extract
    python bench/answer_modes.py evals/suites/sec10q.yaml --limit 60 --data-dir /tmp/lore-sec

The corpus is ingested once into ``--data-dir`` (default: a temporary folder) and reused by every
mode; unchanged documents are skipped on a rerun. Records are kept under ``<data-dir>/answer-modes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODES = ("generate", "extract", "auto")


def _load(path: Path, *, split: str | None, limit: int | None, datasets_dir: Path) -> Any:
    import yaml

    from evals import datasets
    from evals.suite import suite_from_mapping

    raw = yaml.safe_load(path.read_text())
    if split is not None:
        raw.setdefault("dataset", {})["split"] = split
    suite = suite_from_mapping(raw, base=path.parent, datasets_dir=datasets_dir, source=path)
    if limit is not None:
        suite.cases = datasets.pick(suite.cases, limit)
    return suite


def _cites_reference(record: dict[str, Any]) -> bool:
    from evals.runner import document_keys

    wanted = set(record.get("reference_documents") or [])
    return any(document_keys(c) & wanted for c in record.get("citations") or [])


def _unbacked(record: dict[str, Any]) -> int:
    from retrieval.verification import unbacked_specifics

    if record.get("refused") or not record.get("answer"):
        return 0
    cited = {int(c["n"]): str(c.get("text", "")) for c in record.get("citations") or []}
    return len({sentence for sentence, _ in unbacked_specifics(record["answer"], cited)})


def figures(records: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """The comparison's figures over one mode's records."""
    answerable = [r for r in records if r.get("answerable") and not r.get("error")]
    unanswerable = [r for r in records if not r.get("answerable") and not r.get("error")]

    def share(rows: list[dict[str, Any]], test: Any) -> float | None:
        return round(sum(1 for r in rows if test(r)) / len(rows), 3) if rows else None

    def mean_metric(name: str) -> float | None:
        values = [float(r.get("metrics", {}).get(name, 0.0)) for r in answerable if r.get("reference_answer")]
        return round(statistics.fmean(values), 3) if values else None

    def median_timing(name: str) -> float | None:
        values = [float(r["timings"][name]) for r in records if name in r.get("timings", {})]
        return round(statistics.median(values)) if values else None

    return {
        "questions": len(records),
        "errors": sum(1 for r in records if r.get("error")),
        "answered": share(answerable, lambda r: not r.get("refused")),
        "refused": share(unanswerable, lambda r: r.get("refused")),
        "token_f1": mean_metric("token_f1"),
        "semantic": mean_metric("semantic_similarity"),
        "cited": share([r for r in answerable if r.get("reference_documents")], _cites_reference),
        "dropped": round(statistics.fmean(len(r.get("unsupported_sentences") or []) for r in records), 2)
        if records
        else None,
        "unbacked": sum(_unbacked(r) for r in records),
        "first_token_ms": median_timing("first_token_ms"),
        "total_ms": median_timing("total_ms"),
    }


async def run_mode(suite_path: Path, mode: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    from core.resources import open_resources
    from core.settings import get_settings
    from evals import service
    from evals.runner import RECORDS_FILE

    base = get_settings().model_copy(update={"data_dir": data_dir})
    suite = _load(suite_path, split=args.split, limit=args.limit, datasets_dir=base.evals.datasets_dir)
    settings = suite.apply(base)
    settings.answer.mode = mode
    out_dir = data_dir / "answer-modes" / f"{suite.name}-{mode}"
    (out_dir / RECORDS_FILE).unlink(missing_ok=True)
    async with open_resources(settings, with_llm=True, migrate_sqlite=True) as resources:
        await service.run_in_process(resources, suite, out_dir=out_dir)
    records = [json.loads(line) for line in (out_dir / RECORDS_FILE).read_text().splitlines() if line]
    return figures(records)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", type=Path, help="an eval suite YAML")
    parser.add_argument("--modes", default="generate,extract", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--split", help="the dataset's split (single_topic_web: test, train_validate, all)")
    parser.add_argument("--limit", type=int, help="a fixed subset of this many questions")
    parser.add_argument("--data-dir", type=Path, help="keep the ingested corpus here (reused by later runs)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lore-modes-"))
    rows = {mode: asyncio.run(run_mode(args.suite, mode, args, data_dir)) for mode in modes}
    columns = list(next(iter(rows.values())))
    print(f"{'mode':<10}" + "".join(f"{c:>16}" for c in columns))
    for mode, row in rows.items():
        print(f"{mode:<10}" + "".join(f"{'-' if row[c] is None else row[c]!s:>16}" for c in columns))


if __name__ == "__main__":
    main()
