"""Honest refusal on single_topic_web: how often Lore refuses unanswerable questions and answers the rest.

The 20 documents of ``single_topic_web`` are ingested through Lore's own pipeline into one corpus;
each question goes through ``retrieval.service.answer`` (retrieval, the confidence check, the LLM,
the citation check) with the answer cache off. Its 40 unanswerable questions are on the topic of
a document that lacks the answer (e.g. a GPU buying guide asked for a card's idle temperature),
so they are hard: retrieval finds the right document every time.

    python bench/refusal.py --data-dir /tmp/lore-web                 # the test split, full pipeline
    python bench/refusal.py --data-dir /tmp/lore-web --calibrate     # retrieval confidence only

``--calibrate`` scores only the retrieval confidence (no LLM) on the training split and prints, per
threshold, the share of unanswerable questions refused and of answerable ones let through; the
default ``retrieval.min_confidence`` is chosen from that table, then the full pipeline is measured
on the test split. Ends with ``refused unanswerable=… answered answerable=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "single_topic_web"
CORPUS = "single_topic_web"
KINDS = {"no_answer": False, "single_passage": True, "multi_passage": True}
THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    answerable: bool
    kind: str


def read_csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def questions(dataset: Path, split: str) -> list[Question]:
    part = "test" if split == "test" else "train_validate"
    return [
        Question(row["question"], answerable, kind)
        for kind, answerable in KINDS.items()
        for row in read_csv(dataset / f"{kind}_{part}_questions.csv")
    ]


async def _ingest(resources: Resources, dataset: Path) -> None:
    from ingestion.pipeline import ingest_sources
    from ingestion.sources import Source

    sources = [
        Source(source=row["source_url"], name=f"document-{row['index']}.txt", data=row["text"].encode())
        for row in read_csv(dataset / "documents.csv")
    ]
    summary = await ingest_sources(resources, sources, corpus=CORPUS)
    print(f"ingest: {summary.documents_new} new, {summary.chunks_embedded} chunks embedded", file=sys.stderr)


async def _confidences(resources: Resources, asked: list[Question]) -> list[float]:
    from retrieval.prompt import fit_sources
    from retrieval.service import find, max_source_chars, retrieval_confidence

    scores = []
    for question in asked:
        hits = await find(resources, question.text, corpus=CORPUS, k=resources.settings.retrieval.k)
        sources = fit_sources(hits, max_chars=max_source_chars(resources))
        vector = await resources.embedder.embed_query(question.text)
        scores.append(await retrieval_confidence(resources, vector, sources))
    return scores


def _rates(asked: list[Question], refused: list[bool]) -> tuple[float, float]:
    unanswerable = [r for q, r in zip(asked, refused, strict=True) if not q.answerable]
    answerable = [not r for q, r in zip(asked, refused, strict=True) if q.answerable]
    return sum(unanswerable) / len(unanswerable), sum(answerable) / len(answerable)


async def calibrate(resources: Resources, dataset: Path, split: str) -> None:
    asked = questions(dataset, split)
    scores = await _confidences(resources, asked)
    print(f"retrieval confidence on the {split} split ({len(asked)} questions):")
    for threshold in THRESHOLDS:
        refused_share, answered_share = _rates(asked, [s < threshold for s in scores])
        print(
            f"min_confidence={threshold:.2f} refused unanswerable={refused_share:.2f} "
            f"answered answerable={answered_share:.2f}"
        )


async def measure(
    resources: Resources, dataset: Path, split: str, limit: int | None, record: Path | None = None
) -> None:
    from rich.progress import track

    from retrieval.service import Ask, answer

    asked = questions(dataset, split)
    if limit:
        # the same share of each kind
        asked = [q for kind in KINDS for q in [q for q in asked if q.kind == kind][:limit]]
    refused: list[bool] = []
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    for question in track(asked, description="answering", console=None, transient=True):
        result = await answer(resources, Ask(question.text, corpus=CORPUS, use_cache=False))
        refused.append(result.refused)
        if record is not None:
            with record.open("a") as out:
                row = {
                    "question": question.text,
                    "kind": question.kind,
                    "answer": result.answer,
                    "refused": result.refused,
                    "guardrails": result.guardrails,
                    "sources": [hit.text for hit in result.sources],
                }
                out.write(json.dumps(row) + "\n")
        if result.refused:
            low = "below" in result.guardrails.get("retrieval_confidence", "")
            reason = "low confidence" if low else "unsupported draft"
            key = f"{'unanswerable' if not question.answerable else 'answerable'} refused: {reason}"
            reasons[key] = reasons.get(key, 0) + 1
    for kind in KINDS:
        picked = [r for q, r in zip(asked, refused, strict=True) if q.kind == kind]
        print(f"{kind}: {sum(picked)} of {len(picked)} refused")
    for key, count in sorted(reasons.items()):
        print(f"  {key}: {count}")
    refused_share, answered_share = _rates(asked, refused)
    print(f"{len(asked)} questions on the {split} split in {time.perf_counter() - started:.0f}s")
    print(f"refused unanswerable={refused_share:.2f} answered answerable={answered_share:.2f}")


SUPPORT_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def rescore(record: Path) -> None:
    """Refusal rates over a grid of both thresholds, from drafts recorded with both checks off.

    Record them with ``LORE_RETRIEVAL__MIN_CONFIDENCE=0.0001 LORE_RETRIEVAL__CITATION_MIN_SUPPORT=0
    python bench/refusal.py --split train --record FILE``: every draft is then kept with its
    sources and its retrieval confidence (a draft the model itself refused stays refused).
    """
    from retrieval.verification import verify

    rows = [json.loads(line) for line in record.read_text().splitlines()]
    print(f"{len(rows)} recorded answers from {record}")
    for threshold in THRESHOLDS:
        for support in SUPPORT_THRESHOLDS:
            refused = []
            for row in rows:
                confidence = float(row["guardrails"]["retrieval_confidence"].split()[0])
                check = verify(row["answer"], row["sources"], min_support=support, question=row["question"])
                unsupported = not check.supported
                refused.append(row["refused"] or confidence < threshold or unsupported)
            asked = [Question(row["question"], row["kind"] != "no_answer", row["kind"]) for row in rows]
            refused_share, answered_share = _rates(asked, refused)
            print(
                f"min_confidence={threshold:.2f} citation_min_support={support:.1f} "
                f"refused unanswerable={refused_share:.2f} answered answerable={answered_share:.2f}"
            )


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    from core.resources import open_resources
    from core.settings import Settings

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=not args.calibrate, migrate_sqlite=True) as resources:
        await _ingest(resources, args.dataset)
        if args.calibrate:
            await calibrate(resources, args.dataset, args.split or "train")
        else:
            print(
                f"retrieval.min_confidence={settings.retrieval.min_confidence} "
                f"citation_min_support={settings.retrieval.citation_min_support} llm={resources.llm.model}",
                file=sys.stderr,
            )
            await measure(resources, args.dataset, args.split or "test", args.limit, args.record)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="single_topic_web folder")
    parser.add_argument("--data-dir", type=Path, help="keep the ingested corpus here (reused by later runs)")
    parser.add_argument("--split", choices=("test", "train"), help="default: test, or train with --calibrate")
    parser.add_argument("--calibrate", action="store_true", help="retrieval confidence only, per threshold")
    parser.add_argument("--limit", type=int, help="at most this many questions of each kind")
    parser.add_argument("--record", type=Path, help="append each answer (with its sources) to this JSONL")
    parser.add_argument("--rescore", type=Path, help="rates over a grid of thresholds from a --record file")
    args = parser.parse_args()
    if args.rescore:
        rescore(args.rescore)
        return
    with tempfile.TemporaryDirectory(prefix="lore-bench-") as temporary:
        asyncio.run(run(args, args.data_dir or Path(temporary)))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
