"""Qdrant memory and disk per chunk, measured on Lore's own points, for docs/deploy.md's sizing.

It ingests data/corpus with Lore's pipeline into a temporary data dir (real chunks, payloads,
MiniLM dense vectors and BM25 sparse vectors), then writes ``--points`` points made from those
chunks into a fresh Qdrant Edge collection (Lore's embedded store: the Qdrant engine in process,
with the collection config Lore gives a server collection too). Each synthetic point is a real
chunk under a new ID and document, its dense vector moved by a little noise so the HNSW graph is
built over distinct vectors. It prints the resident memory the process gained, the collection's
size on disk, and the raw sizes of one point's parts, per point and scaled to one million.

    python bench/qdrant_memory.py --points 25000 50000 100000

Each size runs in a fresh process. The million-chunk figures extrapolate linearly from the two
largest sizes (their difference cancels fixed overheads); HNSW's links and the payload indexes
grow about linearly, but they are an extrapolation and docs/deploy.md says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.components.vectorstore.edge import EdgeVectorStore  # noqa: E402
from core.indexing import collection_name  # noqa: E402
from core.resources import open_resources  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Chunk, ChunkPoint, SparseVector  # noqa: E402
from ingestion.pipeline import ingest_paths  # noqa: E402

CHUNKS_PER_DOCUMENT = 20
BATCH = 1000


async def lore_points(data_dir: Path) -> list[ChunkPoint]:
    """data/corpus as Lore ingests it: every chunk with its dense and sparse vectors."""
    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [REPO / "data" / "corpus"], corpus="bench")
        collection = collection_name("bench", 1)
        from sqlalchemy import select

        from core.db.models import DocumentRow

        async with resources.sessions() as session:
            doc_ids = list((await session.scalars(select(DocumentRow.id))).all())
        chunks = [c for d in doc_ids for c in await resources.store.chunks(collection, document_id=d)]
        dense = await resources.embedder.embed([c.text for c in chunks])
        sparse = resources.sparse.embed_documents([c.text for c in chunks])
    return [ChunkPoint(chunk=c, dense=d, sparse=s) for c, d, s in zip(chunks, dense, sparse, strict=True)]


def synthetic(base: list[ChunkPoint], start: int, n: int, rng: np.random.Generator) -> list[ChunkPoint]:
    """Points ``start`` to ``start + n`` of the synthetic collection."""
    points = []
    for i in range(start, start + n):
        src = base[i % len(base)]
        vector = np.asarray(src.dense, dtype=np.float32) + rng.normal(0, 0.02, len(src.dense)).astype(
            np.float32
        )
        vector /= np.linalg.norm(vector)
        document = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-doc-{i // CHUNKS_PER_DOCUMENT}"))
        chunk = Chunk(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-chunk-{i}")),
            document_id=document,
            corpus=src.chunk.corpus,
            ordinal=i % CHUNKS_PER_DOCUMENT,
            text=src.chunk.text,
            source=f"{src.chunk.source}#{i // CHUNKS_PER_DOCUMENT}",
            title=src.chunk.title,
            page=src.chunk.page,
            headings=src.chunk.headings,
        )
        points.append(ChunkPoint(chunk=chunk, dense=vector.tolist(), sparse=src.sparse))
    return points


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def sparse_bytes(vector: SparseVector) -> int:
    return 8 * len(vector.indices)  # a u32 index and an f32 value per term


async def measure(n: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        base = await lore_points(Path(tmp) / "lore")
        process = psutil.Process()
        store = await EdgeVectorStore.open(Path(tmp) / "bench-store")
        dim = len(base[0].dense)
        await store.ensure_collection("bench", dim=dim)
        # One batch made and dropped first: Python's allocator keeps what a batch needs, which
        # is not Qdrant's memory.
        synthetic(base, 0, min(BATCH, n), rng)
        before = process.memory_info().rss
        written = 0
        while written < n:
            batch = synthetic(base, written, min(BATCH, n - written), rng)
            await store.upsert("bench", batch)
            written += len(batch)
        # Queries load what a serving collection keeps resident.
        for point in base[:20]:
            await store.search("bench", dense=point.dense, sparse=point.sparse, k=10)
        after = process.memory_info().rss
        disk = folder_bytes(Path(tmp) / "bench-store" / "bench")
        count = await store.count("bench")
        await store.close()
    payload = sum(len(json.dumps(p.chunk.payload()).encode()) for p in base) / len(base)
    sparse = sum(sparse_bytes(p.sparse) for p in base) / len(base)
    return {
        "points": count,
        "source_chunks": len(base),
        "dim": dim,
        "rss_gain_bytes_per_point": (after - before) / count,
        "disk_bytes_per_point": disk / count,
        "raw_dense_bytes_per_point": dim * 4,
        "raw_sparse_bytes_per_point": sparse,
        "raw_payload_json_bytes_per_point": payload,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--points", type=int, nargs="+", default=[25_000, 50_000, 100_000], help="collection sizes to measure"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(measure(args.points[0]))))
        return
    # Each size in a fresh process, so that one measurement's memory does not carry into the next.
    results = []
    for n in sorted(args.points):
        done = subprocess.run(
            [sys.executable, __file__, "--one", "--points", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    million = 1_000_000
    print(
        f"Lore points made from {results[0]['source_chunks']} chunks of data/corpus, {results[0]['dim']}-d:"
    )
    print(f"{'points':>10} {'RSS gain B/pt':>14} {'disk B/pt':>10}")
    for r in results:
        print(
            f"{r['points']:>10,} {r['rss_gain_bytes_per_point']:>14,.0f} {r['disk_bytes_per_point']:>10,.0f}"
        )
    raw = (
        r["raw_dense_bytes_per_point"]
        + r["raw_sparse_bytes_per_point"]
        + r["raw_payload_json_bytes_per_point"]
    )
    print(
        f"raw parts of one point: dense {r['raw_dense_bytes_per_point']} B, sparse "
        f"{r['raw_sparse_bytes_per_point']:.0f} B, payload JSON "
        f"{r['raw_payload_json_bytes_per_point']:.0f} B (total {raw:,.0f} B)"
    )
    if len(results) > 1:
        # The cost of each further point, from the two largest sizes (fixed overheads cancel out).
        small, large = results[-2], results[-1]
        extra = large["points"] - small["points"]
        for key, label in (("rss_gain_bytes_per_point", "memory"), ("disk_bytes_per_point", "disk")):
            slope = (large[key] * large["points"] - small[key] * small["points"]) / extra
            fixed = large[key] * large["points"] - slope * large["points"]
            total = (fixed + slope * million) / 2**30
            print(
                f"{label}: {slope:,.0f} B per further point; extrapolated to one million points: "
                f"{total:.2f} GiB"
            )


if __name__ == "__main__":
    main()
