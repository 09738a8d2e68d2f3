"""Query latency at 100,000 chunks: `/v1/search`, semantic-cache hits and whole answers, 1 and 16 clients.

Set-up (in a temporary data dir, or ``--data-dir`` to keep it): Lore's own ingestion of ``data/``
(the handbook, real chunks), then filler chunks up to ``--chunks`` (default 100,000) written into
the same corpus's collection: the texts are windows of three sentences of the SciFact abstracts
and the SEC 10-Q questions' answers, each with its real BM25 vector, and a random unit dense
vector (embedding 100,000 texts would take about an hour on a 2-core CPU). Random vectors are a
harder case for the HNSW index than real ones, so dense search times here are if anything high.

Then a reader with a key per client, and `lore serve` on a free port; each phase runs at 1 client,
then at 16:

- search: ``POST /v1/search`` (k = 4) with SciFact's test queries;
- cache hit: ``POST /v1/query`` with a paraphrase ("Is it true that …", kept only when its cosine
  to the question is at least 0.93) of a question answered once before, which the semantic cache
  serves (how many hits were semantic is printed);
- answer: ``POST /v1/query/stream`` with questions never asked before: time to first token and to
  the end (how many were refused, and so never reached the LLM, is printed), with
  ``llm.max_tokens`` = 64 so the in-process SmolLM2 finishes in seconds. The in-process model
  answers one request at a time, so at 16 clients requests queue for it.

Prints p50/p95/p99 in ms per phase and client count.

    python bench/query_latency.py
    python bench/query_latency.py --chunks 20000 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from lore_server import REPO, lore, serving

DATASETS = REPO.parent / "shared" / "datasets"
CORPUS = "latency"
PARAPHRASE = "Is it true that {}"
# Paraphrases at least this close (cosine) to their question are used for cache hits: above the
# semantic cache's default threshold (0.90) with a margin.
PARAPHRASE_MIN_COSINE = 0.93


def filler_texts(n: int) -> list[str]:
    """``n`` distinct passages: windows of three sentences over SciFact abstracts and SEC answers."""
    sentences: list[str] = []
    for line in (DATASETS / "scifact" / "beir_format" / "corpus.jsonl").read_text().splitlines():
        sentences += re.split(r"(?<=[.!?])\s+", json.loads(line)["text"])
    with (DATASETS / "docugami_sec10q" / "qna_data.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            sentences += re.split(r"(?<=[.!?])\s+", row["Answer"])
    sentences = [s for s in sentences if len(s.split()) >= 4]
    texts: list[str] = []
    width = 3
    while len(texts) < n:
        texts += [" ".join(sentences[i : i + width]) for i in range(0, len(sentences) - width, 2)]
        width += 1
    return texts[:n]


async def build(data_dir: Path, chunks: int) -> None:
    """Ingest data/ into the corpus, then add filler chunks up to ``chunks`` in its collection."""
    import numpy as np

    from core.resources import open_resources
    from core.settings import Settings
    from core.types import Chunk, ChunkPoint
    from ingestion.corpus_index import corpus_index
    from ingestion.pipeline import ingest_paths

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await _pick_paraphrased(resources, data_dir)
        await ingest_paths(resources, [REPO / "data" / "corpus"], corpus=CORPUS)
        index = await corpus_index(resources, CORPUS)
        have = await resources.store.count(index.collection)
        missing = chunks - have
        if missing <= 0:
            print(f"collection has {have} chunks already", file=sys.stderr)
            return
        print(f"writing {missing} filler chunks ...", file=sys.stderr)
        rng = np.random.default_rng(0)
        texts = filler_texts(missing)
        started = time.perf_counter()
        for start in range(0, missing, 2000):
            batch = texts[start : start + 2000]
            vectors = rng.standard_normal((len(batch), resources.embedder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            points = [
                ChunkPoint(
                    chunk=Chunk(
                        id=f"00000000-0000-4000-8000-{start + i:012d}",
                        document_id=f"filler-{(start + i) // 10}",
                        corpus=CORPUS,
                        ordinal=(start + i) % 10,
                        text=text,
                        source=f"bench://filler/{(start + i) // 10}",
                        title=f"Filler {(start + i) // 10}",
                    ),
                    dense=vector.tolist(),
                    sparse=sparse,
                )
                for i, (text, vector, sparse) in enumerate(
                    zip(batch, vectors, resources.sparse.embed_documents(batch), strict=True)
                )
            ]
            await resources.store.upsert(index.collection, points)
        count = await resources.store.count(index.collection)
        print(f"{count} chunks in {index.collection} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
        started = time.perf_counter()
        await resources.store.optimize(index.collection)
        print(f"indexed in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def _queries() -> list[str]:
    queries = [
        json.loads(line)["text"]
        for line in (DATASETS / "scifact" / "beir_format" / "queries.jsonl").read_text().splitlines()
    ]
    random.Random(0).shuffle(queries)
    return queries


async def _pick_paraphrased(resources: Any, data_dir: Path) -> None:
    """16 questions whose paraphrase the semantic cache will match, saved for the measurement."""
    import numpy as np

    picked: list[str] = []
    for question in _queries()[-200:]:
        a, b = await resources.embedder.embed([question, PARAPHRASE.format(question)])
        if float(np.dot(a, b)) >= PARAPHRASE_MIN_COSINE:
            picked.append(question)
        if len(picked) == 16:
            break
    (data_dir / "bench-paraphrased.json").write_text(json.dumps(picked))


@contextmanager
def server(data_dir: Path, clients: int, settings: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env |= settings | {
        "LORE_DATA_DIR": str(data_dir),
        # the bench measures latency, not the limiter
        "LORE_RATE_LIMIT__QUERY_PER_MINUTE": "1000000",
        "LORE_RATE_LIMIT__QUERY_BURST": "100000",
        "LORE_LLM__MAX_TOKENS": "64",
    }
    user = f"latency-{os.getpid()}"
    lore(env, "users", "create", user, "--role", "reader", "--password-stdin", stdin="bench-password-123\n")
    lore(env, "grants", "add", user, CORPUS)
    keys = [
        lore(env, "keys", "create", "--user", user, "--name", f"client-{i}").strip().splitlines()[-1]
        for i in range(clients)
    ]
    with serving(env, data_dir / "bench-server.log") as (url, _):
        yield url, keys


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(label: str, values: list[float]) -> None:
    print(
        f"{label}: n={len(values)} p50={_pct(values, 50):.1f} p95={_pct(values, 95):.1f} "
        f"p99={_pct(values, 99):.1f} ms"
    )


async def _workers(
    url: str, keys: list[str], clients: int, jobs: list[tuple[str, dict[str, object]]], stream: bool = False
) -> tuple[list[float], list[float], list[dict[str, object]]]:
    """Run ``jobs`` (path, body) over ``clients`` concurrent clients; latencies (and first-token times)."""
    queue: asyncio.Queue[tuple[str, dict[str, object]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    totals: list[float] = []
    firsts: list[float] = []
    bodies: list[dict[str, object]] = []

    async def client(key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
            while not queue.empty():
                path, body = queue.get_nowait()
                started = time.perf_counter()
                if stream:
                    first = None
                    async with http.stream("POST", path, json=body) as response:
                        response.raise_for_status()
                        refused = False
                        async for line in response.aiter_lines():
                            if first is None and line.startswith("event: token"):
                                first = time.perf_counter()
                            refused = refused or ('"refused": true' in line)
                    firsts.append(((first or time.perf_counter()) - started) * 1000)
                    bodies.append({"refused": refused})
                else:
                    response = await http.post(path, json=body)
                    response.raise_for_status()
                    bodies.append(response.json())
                totals.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client(keys[i]) for i in range(clients)))
    return totals, firsts, bodies


async def measure(url: str, keys: list[str], requests: int, answers: int, data_dir: Path) -> None:
    queries = _queries()
    search = [("/v1/search", {"query": q, "corpus": CORPUS, "k": 4}) for q in queries]
    # warm-up: the first requests load models and fill caches
    await _workers(url, keys, 1, search[:5])
    for clients in (1, 16):
        totals, _, _ = await _workers(url, keys, clients, search[:requests])
        report(f"search clients={clients}", totals)

    # Each cached question is answered once (a real LLM answer), then asked again in other words.
    cached = json.loads((data_dir / "bench-paraphrased.json").read_text())
    await _workers(url, keys, 1, [("/v1/query", {"question": q, "corpus": CORPUS}) for q in cached])
    hits = [("/v1/query", {"question": PARAPHRASE.format(q), "corpus": CORPUS}) for q in cached]
    for clients in (1, 16):
        jobs = (hits * (requests // len(hits) + 1))[:requests]
        totals, _, bodies = await _workers(url, keys, clients, jobs)
        semantic = sum(1 for b in bodies if b.get("cache_kind") == "semantic")
        exact = sum(1 for b in bodies if b.get("cache_kind") == "exact")
        report(f"cache-hit clients={clients} (semantic {semantic}, exact {exact}, of {len(bodies)})", totals)

    fresh = iter(q for q in queries[requests:] if q not in cached)
    for clients in (1, 16):
        count = answers if clients == 1 else max(answers, clients)
        jobs = [("/v1/query/stream", {"question": next(fresh), "corpus": CORPUS}) for _ in range(count)]
        totals, firsts, bodies = await _workers(url, keys, clients, jobs, stream=True)
        # A refused question (low retrieval confidence) streams Lore's refusal without the LLM.
        refused = sum(1 for b in bodies if b["refused"])
        report(f"answer first-token clients={clients} ({refused} of {len(bodies)} refused)", firsts)
        report(f"answer total clients={clients}", totals)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks in the collection")
    parser.add_argument("--requests", type=int, default=200, help="search and cache-hit requests per phase")
    parser.add_argument("--answers", type=int, default=5, help="whole answers at one client (16 at 16)")
    parser.add_argument("--data-dir", type=Path, help="keep the built collection here (reused)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LORE_NAME=VALUE",
        help="a setting for the server, e.g. LORE_EMBEDDING__RUNTIME=torch (repeatable)",
    )
    args = parser.parse_args()
    if not all(item.startswith("LORE_") and "=" in item for item in args.set):
        parser.error("--set takes LORE_NAME=VALUE")
    settings = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory(prefix="lore-latency-") as temporary:
        data_dir = (args.data_dir or Path(temporary)).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(build(data_dir, args.chunks))
        with server(data_dir, 16, settings) as (url, keys):
            asyncio.run(measure(url, keys, args.requests, args.answers, data_dir))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
