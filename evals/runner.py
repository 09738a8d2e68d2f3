"""Runs a suite through the same retrieval and answer code the API uses, in process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Protocol

from sqlalchemy import select

from core.db.models import CorpusRow
from core.resources import Resources
from core.types import SearchHit
from evals import metrics
from evals.suite import EvalCase, Suite
from ingestion.pipeline import ingest_paths
from retrieval import service


class CaseProgress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, source: str, status: str, chunks: int) -> None: ...


@dataclass(slots=True)
class RunResult:
    summary: dict[str, Any]
    cases: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "cases": self.cases}


def document_keys(hit: SearchHit) -> set[str]:
    """Names a reference document may use for a hit: its ID, source, file name or title."""
    return {hit.document_id, hit.source, PurePath(hit.source).name, hit.title}


def matches(hit: SearchHit, references: set[str]) -> bool:
    return bool(document_keys(hit) & references)


def ranked_references(hits: list[SearchHit], references: set[str]) -> list[str]:
    """The hits' documents in rank order (one entry per document), labelled by reference when matched."""
    ranked = []
    for hit in hits:
        label = next(iter(sorted(document_keys(hit) & references)), None)
        ranked.append(label if label is not None else hit.document_id)
    return metrics.dedupe(ranked)


async def run_suite(
    resources: Resources, suite: Suite, *, ingest_progress: Any = None, progress: CaseProgress | None = None
) -> RunResult:
    """Ingest the suite's paths (if any), then answer and score every case."""
    started = datetime.now(UTC)
    ingest_summary = None
    if suite.ingest:
        ingest_summary = (
            await ingest_paths(resources, suite.ingest, corpus=suite.corpus, progress=ingest_progress)
        ).as_dict()
    if progress:
        progress.start(len(suite.cases))
    records = []
    for case in suite.cases:
        records.append(await _run_case(resources, suite, case))
        if progress:
            progress.advance(case.question, "done", 0)
    scored = [r for r in records if r["reference_documents"]]
    summary: dict[str, Any] = {
        "suite": suite.name,
        "corpus": suite.corpus,
        "k": suite.k,
        "retrieval_mode": resources.settings.retrieval.mode,
        "embedding_model": await _embedding_model(resources, suite.corpus),
        "llm_model": resources.llm.model,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "cases": len(records),
        "cases_with_references": len(scored),
        "metrics": {
            f"hit@{suite.k}": metrics.mean([r["hit"] for r in scored]),
            "mrr": metrics.mean([r["reciprocal_rank"] for r in scored]),
        },
        "latency_ms": _latency(records),
        "ingest": ingest_summary,
    }
    return RunResult(summary=summary, cases=records)


async def _embedding_model(resources: Resources, corpus: str) -> str:
    """The model the suite's corpus is embedded with (the default for a corpus not indexed yet)."""
    async with resources.sessions() as session:
        model = await session.scalar(select(CorpusRow.embedding_model).where(CorpusRow.name == corpus))
    return model or resources.embedder.model_name


def _latency(records: list[dict[str, Any]]) -> dict[str, float | None]:
    totals = sorted(r["timings"].get("total_ms", 0.0) for r in records)
    if not totals:
        return {"p50": None, "p95": None}

    def pct(p: float) -> float:
        return float(totals[min(len(totals) - 1, round(p * (len(totals) - 1)))])

    return {"p50": pct(0.5), "p95": pct(0.95), "mean": sum(totals) / len(totals)}


async def _run_case(resources: Resources, suite: Suite, case: EvalCase) -> dict[str, Any]:
    start = time.perf_counter()
    # Every case is generated afresh: a cached answer would hide the pipeline's real latency.
    result = await service.answer(
        resources, service.Ask(case.question, corpus=suite.corpus, k=suite.k, use_cache=False)
    )
    references = set(case.reference_documents)
    ranked = ranked_references(result.sources, references)
    return {
        "question": case.question,
        "reference_answer": case.reference_answer,
        "reference_documents": case.reference_documents,
        "tags": case.tags,
        "answer": result.answer,
        "citations": [
            {"n": c.n, "title": c.title, "source": c.source, "page": c.page} for c in result.citations
        ],
        "retrieved": [
            {"rank": i, "score": h.score, "title": h.title, "source": h.source, "page": h.page}
            for i, h in enumerate(result.sources, start=1)
        ],
        "hit": metrics.hit_at_k(ranked, references, suite.k),
        "reciprocal_rank": metrics.reciprocal_rank(ranked, references),
        "citation_hits_reference": any(
            PurePath(c.source).name in references or c.document_id in references for c in result.citations
        ),
        "timings": {**result.timings, "wall_ms": round((time.perf_counter() - start) * 1000, 2)},
        "usage": result.usage,
    }


def write_results(result: RunResult, out_dir: Path) -> Path:
    """Write ``results.json`` under ``out_dir`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    return path
