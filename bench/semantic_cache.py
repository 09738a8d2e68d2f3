"""Semantic cache threshold: cosine of labelled question pairs under the default embedder.

Pairs are built from the sample evaluation's questions (data/evals/sample.jsonl) and the handbook's
topics (data/corpus): paraphrases, which must share an answer, and near misses on the same topic,
which must not ("rotate the JWT key" against "rotate the API key"). For each threshold it prints
precision and recall of "similarity >= threshold means hit", then the chosen default: the
highest near-miss similarity plus a margin of 0.02, rounded up to a hundredth (a wrong answer
served is worse than an answer generated again, and new near misses will sit a little higher).

    python bench/semantic_cache.py
    python bench/semantic_cache.py --latency [--redis redis://127.0.0.1:6379/15]

``--latency`` also times cache hits at one client, in process through ``retrieval.service.answer``
(no HTTP): it ingests data/corpus into a temporary data dir, answers each paraphrase pair's first
question with the configured LLM, then asks its paraphrase (a semantic hit) and the question again
(an exact hit) ``--repeat`` times each, and prints p50 and p95 of each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Paraphrases: the same question, reworded. A cache hit here is right.
SAME = [
    ("What roles can a person have in Lore?", "Which roles can a Lore user have?"),
    ("Which Python version do I need to install Lore?", "What version of Python does Lore require?"),
    (
        "Why does installing Lore take several minutes the first time?",
        "Why is the first install of Lore so slow?",
    ),
    ("What file types can lore ingest read?", "Which file formats does lore ingest support?"),
    (
        "What happens if I run lore ingest again on files that have not changed?",
        "What does lore ingest do when I run it twice on unchanged files?",
    ),
    (
        "What does lore ask print after the answer has finished?",
        "What does lore ask show once the answer is done?",
    ),
    (
        "Which events does the streaming query endpoint send?",
        "What events does the streaming query endpoint emit?",
    ),
    (
        "What does an error response from the Lore API look like?",
        "What is the shape of an error response in the Lore API?",
    ),
    (
        "Which metrics does lore eval run report and where are they written?",
        "What metrics does lore eval run output, and where are they saved?",
    ),
    ("How do I switch Lore to keyword-only search?", "How can I make Lore use keyword search only?"),
    (
        "How many chunks does Lore retrieve for a question by default?",
        "By default, how many chunks does Lore fetch per question?",
    ),
    (
        "lore serve says the address is already in use. What should I do?",
        "How do I fix 'address already in use' when running lore serve?",
    ),
    ("How do I rotate the JWT key?", "How can I rotate the JWT signing key?"),
    ("How do I rotate the API key?", "How can I rotate my API key?"),
    ("What does 'database is locked' mean?", "Why do I get a 'database is locked' error?"),
    ("How do I change the embedding model?", "How can I switch to a different embedding model?"),
    ("Where does Lore keep its files?", "Where are Lore's files stored?"),
    ("How do I upgrade Lore?", "How can I upgrade my Lore installation?"),
    ("How do I uninstall Lore?", "How can I remove Lore from my machine?"),
    ("Why is the first answer slow?", "Why does the first answer take so long?"),
    ("How do I check that the installation worked?", "How can I verify my Lore installation?"),
    ("How are documents split into chunks?", "How does Lore split documents into chunks?"),
    ("What happens when a document fails to ingest?", "What does Lore do if a document fails to ingest?"),
    ("How do I use a settings profile?", "How do settings profiles work in Lore?"),
    ("How do I compare two evaluation runs?", "How can I compare the results of two eval runs?"),
    ("How do I set the chunk size and overlap?", "How can I configure chunk size and overlap?"),
    ("Why does Lore try to reach the internet?", "Why is Lore trying to connect to the internet?"),
    ("How do I switch to production backends?", "How do I move Lore to production backends?"),
    ("What is the default LLM?", "Which LLM does Lore use by default?"),
    ("How do I stream an answer over the API?", "How can I get a streamed answer from the API?"),
]

# Near misses: the same topic, a different question. A cache hit here serves a wrong answer.
DIFFERENT = [
    ("How do I rotate the JWT key?", "How do I rotate the API key?"),
    ("How do I switch Lore to keyword-only search?", "How do I switch Lore to dense-only search?"),
    ("Which Python version do I need to install Lore?", "Which Python packages does Lore install?"),
    ("How do I upgrade Lore?", "How do I uninstall Lore?"),
    ("What does 'database is locked' mean?", "What does 'no such table' mean?"),
    (
        "How many chunks does Lore retrieve for a question by default?",
        "How many tokens is each chunk by default?",
    ),
    ("What file types can lore ingest read?", "What file types can lore ask cite?"),
    ("How do I set the chunk size?", "How do I set the chunk overlap?"),
    ("What roles can a person have in Lore?", "What can the admin role do that a reader cannot?"),
    ("Which events does the streaming query endpoint send?", "Which fields does the query endpoint accept?"),
    ("Where does Lore keep its files?", "Where does Lore keep its logs?"),
    ("How do I change the embedding model?", "How do I change the LLM?"),
    ("What is the default LLM?", "What is the default embedding model?"),
    ("Which port does lore serve use by default?", "Which host does lore serve bind by default?"),
    ("How do I create an API key for a user?", "How do I revoke an API key for a user?"),
    ("How do I ingest a PDF?", "How do I ingest an HTML page?"),
    ("Which metrics does lore eval run report?", "Which datasets does lore eval run use?"),
    ("How long does a cached answer live?", "How many answers does the cache hold?"),
    ("How do I delete a corpus?", "How do I delete a document from a corpus?"),
    ("How do I re-index a corpus?", "How do I rename a corpus?"),
    ("Why is the first answer slow?", "Why is the first install slow?"),
    ("How do I add a user?", "How do I remove a user?"),
    ("What does lore ask print after the answer?", "What does lore ingest print after it finishes?"),
    ("Does Lore need a GPU?", "Does Lore need Docker?"),
    ("How do I use PostgreSQL instead of SQLite?", "How do I use Qdrant server instead of Qdrant Edge?"),
    ("What is hit@k?", "What is MRR?"),
    ("How do I stream an answer over the API?", "How do I stream an answer over a WebSocket?"),
    ("How do I limit requests per minute?", "How do I limit the size of a request body?"),
]

THRESHOLDS = [round(0.80 + 0.01 * i, 2) for i in range(20)]
MARGIN = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--show", action="store_true", help="print every pair's similarity")
    parser.add_argument("--latency", action="store_true", help="also time cache hits")
    parser.add_argument("--redis", default=None, help="Redis URL for the cache (default: in process)")
    parser.add_argument("--pairs", type=int, default=8, help="paraphrase pairs to time")
    parser.add_argument("--repeat", type=int, default=20, help="hits timed per pair and kind")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.latency:
        asyncio.run(latency(args.redis, SAME[: args.pairs], args.repeat))
        return

    from core.components.embedding import Embedder
    from core.settings import EmbeddingSettings

    embedder = Embedder(EmbeddingSettings())
    labelled = [(a, b, True) for a, b in SAME] + [(a, b, False) for a, b in DIFFERENT]
    texts = sorted({t for a, b, _ in labelled for t in (a, b)})
    vectors = dict(zip(texts, embedder.embed_sync(texts), strict=True))
    scored = [
        (sum(x * y for x, y in zip(vectors[a], vectors[b], strict=True)), same, a, b)
        for a, b, same in labelled
    ]
    print(f"model {embedder.model_name}: {len(SAME)} paraphrase pairs, {len(DIFFERENT)} near misses")
    if args.show:
        for sim, same, a, b in sorted(scored, reverse=True):
            print(f"  {sim:.3f} {'same' if same else 'DIFF'}  {a!r} / {b!r}")
    print(f"{'threshold':>9} {'precision':>9} {'recall':>6} {'false hits':>10}")
    lowest = None
    for threshold in THRESHOLDS:
        hits = [same for sim, same, _, _ in scored if sim >= threshold]
        true_hits = sum(hits)
        precision = true_hits / len(hits) if hits else 1.0
        recall = true_hits / len(SAME)
        print(f"{threshold:>9.2f} {precision:>9.3f} {recall:>6.3f} {len(hits) - true_hits:>10}")
        if lowest is None and true_hits == len(hits):
            lowest = threshold
    top_miss = max(sim for sim, same, _, _ in scored if not same)
    chosen = math.ceil((top_miss + MARGIN) * 100) / 100
    print(f"highest near-miss similarity {top_miss:.3f}; lowest threshold with no false hit {lowest}")
    print(f"chosen default (highest near miss + {MARGIN}, rounded up): {chosen:.2f}")


async def latency(redis_url: str | None, pairs: list[tuple[str, str]], repeat: int) -> None:
    from core.resources import open_resources
    from core.settings import Settings
    from ingestion.pipeline import ingest_paths
    from retrieval import service

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "lore", cache={"redis_url": redis_url})
        async with open_resources(settings, migrate_sqlite=True) as resources:
            if redis_url:
                await _private_redis_prefix(resources, redis_url)
            await ingest_paths(resources, [REPO / "data" / "corpus"], corpus="bench")
            times: dict[str, list[float]] = {"semantic": [], "exact": []}
            # Of a semantic hit: embedding the question, searching the index, reading the answer.
            lookups: list[float] = []
            for question, paraphrase in pairs:
                first = await service.answer(resources, service.Ask(question))
                assert not first.cached, f"already cached: {question!r} (a used Redis database?)"
                for _ in range(repeat):
                    for asked in (paraphrase, question):
                        start = time.perf_counter()
                        result = await service.answer(resources, service.Ask(asked))
                        elapsed = (time.perf_counter() - start) * 1000
                        if result.cache_kind is not None:
                            times[result.cache_kind].append(elapsed)
                        if result.cache_kind == "semantic":
                            lookups.append(result.timings["semantic_cache_ms"])
            if redis_url:
                await _drop_prefix(redis_url, resources.cache.prefix)
                await resources.cache.close()
                if resources.semantic is not None:
                    await resources.semantic.close()
    where = f"Redis {redis_url}" if redis_url else "in process"
    print(f"cache hits at one client, cache {where}, {len(pairs)} pairs x {repeat}:")
    for kind, values in times.items():
        if values:
            p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
            print(f"  {kind:>8}: n={len(values)} p50 {statistics.median(values):.1f} ms, p95 {p95:.1f} ms")
    if lookups:
        print(f"  semantic lookup (embed + index + read) p50 {statistics.median(lookups):.1f} ms")


async def _private_redis_prefix(resources: Any, redis_url: str) -> None:
    """Swap in Redis caches under a fresh prefix, so a run neither meets nor leaves old entries."""
    from core.components.cache import RedisCache
    from core.components.semantic_cache import RedisSemanticIndex

    prefix = f"lore-bench:{uuid.uuid4().hex}:"
    cache = resources.settings.cache
    await resources.cache.close()
    resources.cache = RedisCache(redis_url, prefix=prefix, default_ttl_s=cache.default_ttl_s)
    if resources.semantic is not None:
        await resources.semantic.close()
        resources.semantic = RedisSemanticIndex(
            redis_url, max_per_scope=cache.semantic_max_entries, ttl_s=cache.default_ttl_s, prefix=prefix
        )


async def _drop_prefix(redis_url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        async for name in client.scan_iter(match=f"{prefix}*"):
            await client.delete(name)
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
