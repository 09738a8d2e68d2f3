"""Runs a suite: in process through the code the API uses, or against a Lore server by URL.

Every answered case is appended to ``records.jsonl`` in the run directory as soon as it is
scored, so a killed run continues where it stopped (cases already recorded are not asked again).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Protocol

from core.resources import Resources
from evals import metrics
from evals.suite import EvalCase, Suite

RECORDS_FILE = "records.jsonl"
# Metrics where less is better: gates and comparisons read their changes the other way round.
LOWER_IS_BETTER = ("latency", "tokens")


def lower_is_better(metric: str) -> bool:
    return metric.startswith(LOWER_IS_BETTER)


class CaseProgress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, source: str, status: str, chunks: int) -> None: ...


@dataclass(slots=True)
class Answered:
    """What the pipeline returned for one question, as plain values (in process or over HTTP)."""

    answer: str | None
    retrieved: list[dict[str, Any]]
    citations: list[dict[str, Any]] = field(default_factory=list)
    # None when the backend does not report them (an older server).
    unsupported_citations: list[dict[str, Any]] | None = None
    refused: bool = False
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    # Sentences verification left out of the answer, with their reasons, and how it was composed.
    unsupported_sentences: list[dict[str, Any]] = field(default_factory=list)
    answer_kind: str = ""
    # Each guardrail's verdict (why an answer was refused, the confidence and support scores).
    guardrails: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """Answers (or only retrieves for) one case."""

    async def run(self, suite: Suite, case: EvalCase) -> Answered: ...


def _passage(hit: Any, rank: int | None = None) -> dict[str, Any]:
    out = {
        "document_id": hit.document_id,
        "title": hit.title,
        "source": hit.source,
        "page": hit.page,
        "text": hit.text,
    }
    if rank is not None:
        out |= {"rank": rank, "score": getattr(hit, "score", None)}
    return out


class InProcessBackend:
    """Lore's own retrieval and answer services over opened resources."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def run(self, suite: Suite, case: EvalCase) -> Answered:
        from retrieval import service

        if suite.mode == "retrieve":
            timings: dict[str, float] = {}
            start = time.perf_counter()
            hits = await service.search(
                self._resources,
                case.question,
                corpora=[suite.corpus],
                k=suite.retrieval_depth or suite.k,
                timings=timings,
            )
            timings["total_ms"] = round((time.perf_counter() - start) * 1000, 2)
            return Answered(
                answer=None, retrieved=[_passage(h, i) for i, h in enumerate(hits, 1)], timings=timings
            )
        # Every case is generated afresh: a cached answer would hide the pipeline's real latency.
        result = await service.answer(
            self._resources, service.Ask(case.question, corpus=suite.corpus, k=suite.k, use_cache=False)
        )
        return Answered(
            answer=result.answer,
            retrieved=[_passage(h, i) for i, h in enumerate(result.sources, 1)],
            citations=[_passage(c) | {"n": c.n} for c in result.citations],
            unsupported_citations=[_passage(c) | {"n": c.n} for c in result.unsupported_citations],
            refused=result.refused,
            model=result.model,
            timings=dict(result.timings),
            unsupported_sentences=[
                {"sentence": u.sentence, "reason": u.reason} for u in result.unsupported_sentences
            ],
            answer_kind=result.answer_kind,
            guardrails=dict(result.guardrails),
            usage=dict(result.usage),
        )


class RemoteBackend:
    """A running Lore server: ``POST /v1/query`` (and ``/v1/search`` for the retrieved chunks)."""

    def __init__(
        self, base_url: str, token: str | None, *, timeout_s: float = 300.0, transport: Any = None
    ) -> None:
        import httpx2

        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._client = httpx2.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx2

        from core.errors import BackendError

        try:
            response = await self._client.post(path, json=body)
        except httpx2.HTTPError as exc:
            raise BackendError(f"{path} failed: {exc}") from exc
        if response.status_code >= 400:
            raise BackendError(f"{path} answered {response.status_code}: {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    async def run(self, suite: Suite, case: EvalCase) -> Answered:
        depth = min(suite.retrieval_depth or suite.k, 50)
        start = time.perf_counter()
        found = await self._post("/v1/search", {"query": case.question, "corpus": suite.corpus, "k": depth})
        retrieved = [dict(r, rank=i) for i, r in enumerate(found.get("results", []), 1)]
        if suite.mode == "retrieve":
            return Answered(
                answer=None,
                retrieved=retrieved,
                timings={"total_ms": round((time.perf_counter() - start) * 1000, 2)},
            )
        body = await self._post(
            "/v1/query", {"question": case.question, "corpus": suite.corpus, "k": suite.k}
        )
        unsupported = body.get("unsupported_citations")
        return Answered(
            answer=body.get("answer", ""),
            retrieved=retrieved[: suite.k],
            citations=list(body.get("citations", [])),
            unsupported_citations=list(unsupported) if isinstance(unsupported, list) else None,
            refused=bool(body.get("refused", False)),
            model=str(body.get("model", "")),
            timings=dict(body.get("timings", {})),
            usage=dict(body.get("usage", {})),
            unsupported_sentences=list(body.get("unsupported_sentences") or []),
            answer_kind=str(body.get("answer_kind", "")),
            guardrails=dict(body.get("guardrails") or {}),
        )


def document_keys(passage: dict[str, Any]) -> set[str]:
    """Names a reference document may use for a passage: its ID, source, file name or title."""
    source = str(passage.get("source", ""))
    keys = {str(passage.get("document_id", "")), source, PurePath(source).name, str(passage.get("title", ""))}
    return keys - {""}


def ranked_references(passages: list[dict[str, Any]], references: set[str]) -> list[str]:
    """The passages' documents in rank order (one entry per document), labelled by reference when matched."""
    ranked = []
    for passage in passages:
        keys = document_keys(passage)
        label = next(iter(sorted(keys & references)), None)
        ranked.append(
            label if label is not None else str(passage.get("document_id") or passage.get("source"))
        )
    return metrics.dedupe(ranked)


Embed = Callable[[str], Awaitable[list[float]]]


async def score_case(suite: Suite, case: EvalCase, answered: Answered, embed: Embed | None) -> dict[str, Any]:
    """Every non-judge metric that applies to the case, and the reason for each one not measured."""
    values: dict[str, float | None] = {}
    not_measured: dict[str, str] = {}
    k = suite.k
    graded = case.graded()
    if graded and case.answerable:
        ranked = ranked_references(answered.retrieved, set(graded))
        values[f"hit@{k}"] = metrics.hit_at_k(ranked, graded, k)
        values[f"recall@{k}"] = metrics.recall_at_k(ranked, graded, k)
        values["mrr"] = metrics.reciprocal_rank(ranked, graded)
        values["ndcg@10"] = metrics.ndcg_at_k(ranked, graded, 10)
        if suite.mode == "retrieve":
            values["recall@100"] = metrics.recall_at_k(ranked, graded, 100)
    if suite.mode == "answer" and answered.answer is not None:
        if case.reference_answer and case.answerable:
            values["token_f1"] = metrics.token_f1(answered.answer, case.reference_answer)
            values["exact_match"] = metrics.exact_match(answered.answer, case.reference_answer)
            if embed is not None and answered.answer.strip():
                a, b = await asyncio.gather(embed(answered.answer), embed(case.reference_answer))
                values["semantic_similarity"] = metrics.cosine(a, b)
            elif embed is not None:
                not_measured["semantic_similarity"] = "empty answer"
        if answered.unsupported_citations is None:
            not_measured["citation_validity"] = "the backend does not report unsupported citations"
        else:
            validity = metrics.citation_validity(len(answered.citations), len(answered.unsupported_citations))
            if validity is None:
                not_measured["citation_validity"] = "the answer cites nothing"
            values["citation_validity"] = validity
        values["refusal_accuracy"] = metrics.refusal_correct(answered.refused, case.answerable)
    return {
        "metrics": {name: v for name, v in values.items() if v is not None},
        "not_measured": not_measured,
    }


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """The records a run directory holds (a half-written last line, from a kill, is dropped)."""
    path = out_dir / RECORDS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


Judge = Callable[[EvalCase, Answered], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class Run:
    """One suite run: where its records go and how cases are answered, scored and judged."""

    suite: Suite
    backend: Backend
    out_dir: Path
    embed: Embed | None = None
    judge: Judge | None = None
    progress: CaseProgress | None = None

    async def execute(self) -> list[dict[str, Any]]:
        """Run every (case, repeat) not yet recorded; returns all records, old and new, in order."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        existing = {(r["case_id"], r["repeat"]): r for r in read_records(self.out_dir)}
        todo = [
            (case, repeat)
            for repeat in range(self.suite.repeats)
            for case in self.suite.cases
            if (case.id, repeat) not in existing
        ]
        if self.progress:
            self.progress.start(len(todo))
        slots = asyncio.Semaphore(self.suite.concurrency)
        lock = asyncio.Lock()
        path = self.out_dir / RECORDS_FILE
        # Rewritten without a torn last line, so appends start on a fresh line.
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in existing.values()))

        async def one(case: EvalCase, repeat: int) -> None:
            async with slots:
                record = await self._record(case, repeat)
            async with lock:
                with path.open("a") as handle:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                existing[(case.id, repeat)] = record
            if self.progress:
                self.progress.advance(case.question, "failed" if record.get("error") else "done", 0)

        await asyncio.gather(*(one(case, repeat) for case, repeat in todo))
        order = {case.id: i for i, case in enumerate(self.suite.cases)}
        return sorted(
            (r for key, r in existing.items() if key[0] in order),
            key=lambda r: (r["repeat"], order[r["case_id"]]),
        )

    async def _record(self, case: EvalCase, repeat: int) -> dict[str, Any]:
        from core.errors import LoreError

        record: dict[str, Any] = {
            "case_id": case.id,
            "repeat": repeat,
            "question": case.question,
            "reference_answer": case.reference_answer,
            "reference_documents": case.reference_documents,
            "answerable": case.answerable,
            "tags": case.tags,
        }
        start = time.perf_counter()
        try:
            answered = await self.backend.run(self.suite, case)
        except LoreError as exc:
            return record | {"error": exc.message, "metrics": {}, "not_measured": {}}
        wall_ms = round((time.perf_counter() - start) * 1000, 2)
        scored = await score_case(self.suite, case, answered, self.embed)
        if self.judge is not None and answered.answer is not None:
            judged = await self.judge(case, answered)
            scored["metrics"] |= judged["metrics"]
            scored["not_measured"] |= judged["not_measured"]
            record["judge"] = judged.get("details", {})
        return record | {
            "answer": answered.answer,
            "refused": answered.refused,
            "model": answered.model,
            "citations": answered.citations,
            "unsupported_citations": answered.unsupported_citations,
            "unsupported_sentences": answered.unsupported_sentences,
            "answer_kind": answered.answer_kind,
            "guardrails": answered.guardrails,
            "retrieved": [{k: v for k, v in p.items() if k != "text"} for p in answered.retrieved[:20]],
            "timings": {**answered.timings, "wall_ms": wall_ms},
            "usage": answered.usage,
            **scored,
        }


def summarize(
    suite: Suite, records: list[dict[str, Any]], *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Suite-level figures: each metric's mean over the cases measured (and its spread over repeats),
    not-measured counts with reasons, latency percentiles, tokens, per-tag means."""
    # A metric never measured still has its row: its not-measured count is the finding.
    names = suite.metrics or sorted(
        {n for r in records for n in (*r.get("metrics", {}), *r.get("not_measured", {}))}
    )
    summary_metrics: dict[str, float | None] = {}
    detail: dict[str, dict[str, Any]] = {}
    for name in names:
        per_repeat = []
        for repeat in range(suite.repeats):
            value = metrics.mean(
                r["metrics"].get(name) for r in records if r["repeat"] == repeat and "metrics" in r
            )
            if value is not None:
                per_repeat.append(value)
        reasons: dict[str, int] = {}
        for r in records:
            reason = r.get("not_measured", {}).get(name) or (r.get("error") and "the case failed")
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
        summary_metrics[name] = metrics.mean(per_repeat)
        detail[name] = {
            "measured": sum(1 for r in records if name in r.get("metrics", {})),
            "not_measured": sum(reasons.values()),
            "not_measured_reasons": reasons,
            "spread": metrics.spread(per_repeat) if suite.repeats > 1 else None,
        }
    latencies = [
        float(r["timings"].get("total_ms", r["timings"]["wall_ms"])) for r in records if "timings" in r
    ]
    for p in (50, 95, 99):
        summary_metrics[f"latency_p{p}_ms"] = metrics.percentile(latencies, p)
    answered = [r for r in records if r.get("usage")]
    for key, name in (("prompt_tokens", "tokens_in"), ("completion_tokens", "tokens_out")):
        summary_metrics[name] = metrics.mean(float(r["usage"].get(key, 0)) for r in answered)
    tags = sorted({t for r in records for t in r.get("tags", [])})
    by_tag = {
        tag: {
            "cases": sum(1 for r in records if tag in r.get("tags", [])),
            **{
                name: metrics.mean(
                    r.get("metrics", {}).get(name) for r in records if tag in r.get("tags", [])
                )
                for name in names
            },
        }
        for tag in tags
    }
    return {
        "suite": suite.name,
        "corpus": suite.corpus,
        "k": suite.k,
        "mode": suite.mode,
        "repeats": suite.repeats,
        "cases": len(suite.cases),
        "records": len(records),
        "failed": sum(1 for r in records if r.get("error")),
        "cases_with_references": sum(1 for r in records if r["reference_documents"] and r["repeat"] == 0),
        "metrics": summary_metrics,
        "metric_details": detail,
        "latency_ms": {
            "p50": summary_metrics["latency_p50_ms"],
            "p95": summary_metrics["latency_p95_ms"],
            "p99": summary_metrics["latency_p99_ms"],
            "mean": metrics.mean(latencies),
        },
        "tokens": {
            "in_per_question": summary_metrics["tokens_in"],
            "out_per_question": summary_metrics["tokens_out"],
            "in_total": sum(int(r["usage"].get("prompt_tokens", 0)) for r in answered),
            "out_total": sum(int(r["usage"].get("completion_tokens", 0)) for r in answered),
        },
        "by_tag": by_tag,
        "finished_at": datetime.now(UTC).isoformat(),
        **(extra or {}),
    }
