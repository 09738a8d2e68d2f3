"""Chunker comparison: Lore's structure-aware chunker against llama-index's SentenceSplitter.

Both get the same extracted documents, the same budget (200 word pieces of the embedder's own
tokenizer, 32 overlap) and the same structure: SentenceSplitter runs once per (page, heading path)
group, so neither crosses a page or a section. Prints, for each, chunks, time, mean and largest
chunk in the embedder's tokens, chunks over the model's window, and the total tokens embedded
(overlap makes it larger than the text).

    pip install -e '.[bench]'
    python bench/chunkers.py ../shared/datasets/docugami_sec10q/docs --limit 4
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="folder of documents (PDF, Markdown, HTML, text)")
    parser.add_argument("--limit", type=int, default=None, help="take the first N files by name")
    parser.add_argument("--tokens", type=int, default=200, help="chunk budget in the embedder's tokens")
    parser.add_argument("--overlap", type=int, default=32, help="overlap in the embedder's tokens")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llama_index.core.node_parser import SentenceSplitter

    from core.components.embedding import Embedder
    from core.settings import EmbeddingSettings
    from ingestion.chunking import chunk_blocks
    from ingestion.extract import SUPPORTED_SUFFIXES, extract

    embedder = Embedder(EmbeddingSettings())
    window = embedder.max_tokens - embedder.special_tokens

    def tokens(text: str) -> int:
        return embedder.count_tokens(text)

    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)[: args.limit]
    if not files:
        raise SystemExit(f"no supported documents in {args.folder}")
    documents = [extract(p.name, p.read_bytes()) for p in files]

    started = time.perf_counter()
    lore = [
        c.text
        for d in documents
        for c in chunk_blocks(d.blocks, embedder, max_tokens=args.tokens, overlap_tokens=args.overlap)
    ]
    lore_s = time.perf_counter() - started

    def ids(text: str) -> list[int]:
        return list(embedder.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    splitter = SentenceSplitter(chunk_size=args.tokens, chunk_overlap=args.overlap, tokenizer=ids)
    started = time.perf_counter()
    llama: list[str] = []
    for d in documents:
        for _, group in itertools.groupby(d.blocks, key=lambda b: (b.page, b.headings)):
            llama += splitter.split_text("\n\n".join(b.text for b in group))
    llama_s = time.perf_counter() - started

    print(f"{len(files)} documents; budget {args.tokens} tokens, overlap {args.overlap}; window {window}")
    for name, texts, seconds in (("Lore", lore, lore_s), ("SentenceSplitter", llama, llama_s)):
        counts = [tokens(t) for t in texts]
        print(
            f"{name:17} {len(texts):6} chunks  {seconds:6.2f} s  mean {sum(counts) / len(counts):5.0f}  "
            f"max {max(counts):4}  over window {sum(c > window for c in counts):3}  "
            f"tokens embedded {sum(counts)}"
        )


if __name__ == "__main__":
    main()
