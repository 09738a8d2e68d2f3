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

``--reranker`` scores each mode twice in one run: fused (``retrieval.reranker`` none), then with
the reranker on (label ``<mode>+rerank``), and the ratio of the two (``<mode>+rerank/<mode>``).
It reports how many queries fell back to the fused order (the reranker failed or timed out).
An endpoint's API key is read from ``LORE_RETRIEVAL__RERANKER_API_KEY``.

    python bench/retrieval.py --reranker cross-encoder --reranker-model /models/bge-reranker-base
    python bench/retrieval.py --reranker endpoint --reranker-url URL --reranker-model BAAI/bge-reranker-base
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact" / "beir_format"
CORPUS = "scifact"
SOURCE_PREFIX = "beir://scifact/"
MODES = ("dense", "sparse", "hybrid")
RERANKERS = ("none", "cross-encoder", "endpoint")
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
    from ingestion.pipeline import ingest_sources
    from ingestion.sources import Source

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


@dataclass(frozen=True)
class RerankerChoice:
    """The reranker to score against the fused order: ``retrieval.reranker`` and its settings
    (None: the settings' defaults)."""

    reranker: str
    model: str | None = None
    url: str | None = None
    timeout_s: float | None = None
    candidates: int | None = None


def _configure_reranker(resources: Resources, choice: RerankerChoice) -> None:
    """Set the reranker's settings, leaving it off (``none``) until a pass turns it on."""
    retrieval = resources.settings.retrieval
    retrieval.reranker_model, retrieval.reranker_url = choice.model, choice.url
    if choice.timeout_s is not None:
        retrieval.reranker_timeout_s = choice.timeout_s
    if choice.candidates is not None:
        retrieval.rerank_candidates = choice.candidates
    retrieval.reranker = "none"


async def _evaluate(
    resources: Resources, dataset: Path, modes: Sequence[str], split: str, *, label: str = ""
) -> dict[str, dict[str, float]]:
    """Mean scores per mode (keyed ``mode + label``) with the reranker the settings name, if any."""
    from retrieval.service import resolve_corpora, search_targets

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
        fallbacks: Counter[str] = Counter()
        rerank_ms = 0.0
        started = time.perf_counter()
        # As retrieval.service.search does, but with the reranker's verdicts: registered for the
        # whole pass, the corpus resolved once (nothing re-indexes it meanwhile).
        with resources.searches.track([CORPUS]):
            targets = list((await resolve_corpora(resources, CORPUS)).values())
            for query_id, text in queries.items():
                verdicts: dict[str, str] = {}
                timings: dict[str, float] = {}
                hits = await search_targets(
                    resources, text, targets=targets, k=CHUNKS_PER_QUERY, timings=timings, verdicts=verdicts
                )
                rerank_ms += timings.get("rerank_ms", 0.0)
                if verdicts.get("reranker", "").startswith("fallback"):
                    fallbacks[verdicts["reranker"]] += 1
                ranked = documents_in_order([hit.source for hit in hits])
                relevant = qrels[query_id]
                totals["nDCG@10"] += ndcg_at(ranked, relevant, 10)
                totals["recall@10"] += recall_at(ranked, relevant, 10)
                totals["recall@100"] += recall_at(ranked, relevant, 100)
        results[mode + label] = {name: value / len(queries) for name, value in totals.items()}
        print(
            f"{mode + label}: {len(queries)} queries in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        if resources.settings.retrieval.reranker != "none":
            print(
                f"{mode + label}: reranker fell back to the fused order on {fallbacks.total()} of "
                f"{len(queries)} queries; {rerank_ms / len(queries):.1f} ms per query reranking",
                file=sys.stderr,
            )
            for verdict, count in fallbacks.most_common():
                print(f"  {count} x {verdict}", file=sys.stderr)
    return results


async def _evaluate_reranked(
    resources: Resources, dataset: Path, modes: Sequence[str], split: str, choice: RerankerChoice
) -> dict[str, dict[str, float]]:
    """Each mode fused, then reranked, then the ratio of the two (reranked / fused) per metric."""
    _configure_reranker(resources, choice)
    fused = await _evaluate(resources, dataset, modes, split)
    resources.settings.retrieval.reranker = choice.reranker  # type: ignore[assignment]
    reranked = await _evaluate(resources, dataset, modes, split, label="+rerank")
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        before, after = fused[mode], reranked[mode + "+rerank"]
        results[mode], results[mode + "+rerank"] = before, after
        results[f"{mode}+rerank/{mode}"] = {
            name: after[name] / value if value else math.nan for name, value in before.items()
        }
    return results


async def run(
    dataset: Path,
    data_dir: Path,
    modes: Sequence[str],
    *,
    split: str = "test",
    sweep: bool = False,
    reranker: RerankerChoice | None = None,
) -> dict[str, dict[str, float]]:
    from core.resources import open_resources
    from core.settings import Settings

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        print(f"embedder: {resources.embedder.model_name} ({resources.embedder.dtype})", file=sys.stderr)
        await _ingest(resources, dataset)
        if reranker is not None:
            return await _evaluate_reranked(resources, dataset, modes, split, reranker)
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
    parser.add_argument(
        "--reranker",
        choices=RERANKERS,
        default="none",
        help="also score each mode with this reranker on, beside the fused order (default none)",
    )
    parser.add_argument(
        "--reranker-model", help="the cross-encoder's local folder, or the model name the endpoint serves"
    )
    parser.add_argument("--reranker-url", help="base URL of the rerank endpoint (POST {url}/v1/rerank)")
    parser.add_argument(
        "--reranker-timeout-s", type=float, help="longest wait for the reranker (default: the settings')"
    )
    parser.add_argument(
        "--rerank-candidates", type=int, help="fused candidates the reranker scores (default: the settings')"
    )
    args = parser.parse_args()
    reranker = None
    if args.reranker != "none":
        if not args.reranker_model:
            parser.error(f"--reranker {args.reranker} needs --reranker-model")
        if args.reranker == "endpoint" and not args.reranker_url:
            parser.error("--reranker endpoint needs --reranker-url")
        if args.sweep:
            parser.error("--sweep scores fusion settings; run it without --reranker")
        reranker = RerankerChoice(
            args.reranker,
            args.reranker_model,
            args.reranker_url,
            args.reranker_timeout_s,
            args.rerank_candidates,
        )
    with tempfile.TemporaryDirectory(prefix="lore-bench-") as temporary:
        data_dir = args.data_dir if args.data_dir is not None else Path(temporary)
        results = asyncio.run(
            run(args.dataset, data_dir, args.modes, split=args.split, sweep=args.sweep, reranker=reranker)
        )
    for mode, scores in results.items():
        print(" ".join([mode, *(f"{name}={value:.4f}" for name, value in scores.items())]))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
