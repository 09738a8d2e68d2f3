"""Retrieval benchmark: BEIR SciFact through Lore's own ingestion and search.

Each abstract is one Markdown document (`# title`, blank line, text) whose source names its
BEIR ``_id``, ingested with ``ingestion.pipeline.ingest_sources``; the test queries go through
``retrieval.service.search`` in each mode. Chunk hits map back to documents (a document ranks
where its best chunk does). Scores: nDCG@10 with the graded qrels, recall@10, recall@100.

    python bench/retrieval.py --data-dir /tmp/lore-scifact

``--data-dir`` keeps the ingested corpus, so a second run embeds nothing (unchanged documents
are skipped); without it a temporary data dir is used and removed.

``--split train --sweep`` scores hybrid fusion settings (RRF: ``retrieval.rrf_k`` x
``retrieval.dense_weight``; DBSF) on the training queries, which is how Lore's defaults were
chosen: choosing them on the test queries would overstate the test score.

    python bench/retrieval.py --data-dir /tmp/lore-scifact --split train --sweep
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact" / "beir_format"
CORPUS = "scifact"
SOURCE_PREFIX = "beir://scifact/"
MODES = ("dense", "sparse", "hybrid")
# Chunks fetched per query: enough that 100 distinct documents remain after mapping chunks to documents.
CHUNKS_PER_QUERY = 300


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Query ID -> {document ID: graded relevance} from a BEIR qrels TSV (header line skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """nDCG@k with graded gains (BEIR/pytrec_eval: gain = relevance, discount log2(rank + 1))."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, gain in relevant.items() if gain > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def documents_in_order(sources: Sequence[str]) -> list[str]:
    """BEIR document IDs from chunk hits' sources, each at its first (best) rank."""
    seen: dict[str, None] = {}
    for source in sources:
        seen.setdefault(source.removeprefix(SOURCE_PREFIX), None)
    return list(seen)


async def _ingest(resources: Resources, dataset: Path) -> None:
    from ingestion.pipeline import Source, ingest_sources

    sources = []
    for line in (dataset / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        body = f"# {doc['title'].strip()}\n\n{doc['text'].strip()}\n" if doc["title"].strip() else doc["text"]
        sources.append(Source(source=SOURCE_PREFIX + doc["_id"], name=f"{doc['_id']}.md", data=body.encode()))
    started = time.perf_counter()
    summary = await ingest_sources(resources, sources, corpus=CORPUS)
    print(
        f"ingest: {summary.documents_new} new, {summary.documents_changed} changed, "
        f"{summary.documents_unchanged} unchanged, {summary.documents_failed} failed, "
        f"{summary.chunks_embedded} chunks embedded in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )


# The fusion settings --sweep tries: RRF's k, and the dense list's weight (the sparse list's is 1).
SWEEP_RRF_K = (20, 60)
SWEEP_DENSE_WEIGHT = (1.0, 1.5, 2.0)


async def _evaluate(
    resources: Resources, dataset: Path, modes: Sequence[str], split: str
) -> dict[str, dict[str, float]]:
    from retrieval.service import search

    qrels = load_qrels(dataset / "qrels" / f"{split}.tsv")
    queries = {
        q["_id"]: q["text"]
        for q in map(json.loads, (dataset / "queries.jsonl").read_text().splitlines())
        if q["_id"] in qrels
    }
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        resources.settings.retrieval.mode = mode  # type: ignore[assignment]
        totals = {"nDCG@10": 0.0, "recall@10": 0.0, "recall@100": 0.0}
        started = time.perf_counter()
        for query_id, text in queries.items():
            hits = await search(resources, text, corpora=[CORPUS], k=CHUNKS_PER_QUERY, timings={})
            ranked = documents_in_order([hit.source for hit in hits])
            relevant = qrels[query_id]
            totals["nDCG@10"] += ndcg_at(ranked, relevant, 10)
            totals["recall@10"] += recall_at(ranked, relevant, 10)
            totals["recall@100"] += recall_at(ranked, relevant, 100)
        results[mode] = {name: value / len(queries) for name, value in totals.items()}
        print(
            f"{mode}: {len(queries)} queries in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
    return results


async def run(
    dataset: Path, data_dir: Path, modes: Sequence[str], *, split: str = "test", sweep: bool = False
) -> dict[str, dict[str, float]]:
    from core.resources import open_resources
    from core.settings import Settings

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        print(f"embedder: {resources.embedder.model_name} ({resources.embedder.dtype})", file=sys.stderr)
        await _ingest(resources, dataset)
        if not sweep:
            return await _evaluate(resources, dataset, modes, split)
        results: dict[str, dict[str, float]] = {}
        retrieval = resources.settings.retrieval
        settings_tried: list[tuple[str, int, float]] = [
            ("rrf", rrf_k, weight) for rrf_k in SWEEP_RRF_K for weight in SWEEP_DENSE_WEIGHT
        ]
        for fusion, rrf_k, weight in [*settings_tried, ("dbsf", retrieval.rrf_k, 1.0)]:
            retrieval.fusion = fusion  # type: ignore[assignment]
            retrieval.rrf_k, retrieval.dense_weight, retrieval.sparse_weight = rrf_k, weight, 1.0
            scores = await _evaluate(resources, dataset, ["hybrid"], split)
            label = (
                "hybrid fusion=dbsf" if fusion == "dbsf" else f"hybrid rrf_k={rrf_k} dense_weight={weight}"
            )
            results[label] = scores["hybrid"]
            print(label, " ".join(f"{n}={v:.4f}" for n, v in scores["hybrid"].items()), file=sys.stderr)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="BEIR SciFact folder")
    parser.add_argument("--data-dir", type=Path, help="keep the ingested corpus here (reused by later runs)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--split", choices=("test", "train"), default="test", help="which qrels to score (default test)"
    )
    parser.add_argument("--sweep", action="store_true", help="score a grid of hybrid fusion settings")
    args = parser.parse_args()
    if args.data_dir is not None:
        results = asyncio.run(
            run(args.dataset, args.data_dir, args.modes, split=args.split, sweep=args.sweep)
        )
    else:
        with tempfile.TemporaryDirectory(prefix="lore-bench-") as temporary:
            results = asyncio.run(
                run(args.dataset, Path(temporary), args.modes, split=args.split, sweep=args.sweep)
            )
    for mode, scores in results.items():
        print(" ".join([mode, *(f"{name}={value:.4f}" for name, value in scores.items())]))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
