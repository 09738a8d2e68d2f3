"""Embedder precision: reduced precision is a speed choice that must not change what is found."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from core.components import embedding
from core.components.embedding import Embedder, resolve_dtype
from core.settings import EmbeddingSettings

pytestmark = pytest.mark.models

TEXTS = [
    "Lore answers questions from an organisation's own documents, with citations.",
    "The quarterly report shows revenue grew eight percent on higher services income.",
    "Qdrant stores dense and sparse vectors for every chunk.",
]


def test_explicit_dtype_is_kept() -> None:
    assert resolve_dtype("float32", None) == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"


def test_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: True)
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "cuda:0") == "float16"


def test_bfloat16_vectors_match_float32() -> None:
    full = Embedder(EmbeddingSettings(dtype="float32"))
    half = Embedder(EmbeddingSettings(dtype="bfloat16"))
    a, b = np.array(full.embed_sync(TEXTS)), np.array(half.embed_sync(TEXTS))
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.99
    # The nearest text of each is itself in both precisions.
    assert list((a @ b.T).argmax(axis=1)) == [0, 1, 2]


def test_chunking_while_encoding_does_not_break_batches(embedder: Embedder) -> None:
    # Given texts of many lengths, so every batch needs padding,
    texts = [" ".join(["word"] * n) for n in range(1, 97)]
    failures: list[BaseException] = []
    done = threading.Event()

    def chunk() -> None:
        while not done.is_set():
            try:
                embedder.token_offsets("A chunking call tokenizes without padding. " * 40)
            except BaseException as exc:  # reported by the assertion below
                failures.append(exc)

    # when the pipeline's extract threads tokenize while batches are encoded,
    workers = [threading.Thread(target=chunk) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        vectors = [embedder.embed_sync(texts) for _ in range(5)]
    finally:
        done.set()
        for worker in workers:
            worker.join()
    # then every batch is embedded and chunking saw no error.
    assert failures == []
    assert all(len(batch) == len(texts) for batch in vectors)


async def test_concurrent_queries_are_encoded_together_with_the_same_vectors(embedder: Embedder) -> None:
    questions = [f"How do I rotate key number {n}?" for n in range(12)]
    alone = [await embedder.embed_query(q) for q in questions]
    batches: list[int] = []
    encode = embedder.embed_sync

    def counting(texts: Sequence[str]) -> list[list[float]]:
        batches.append(len(texts))
        return encode(texts)

    embedder.embed_sync = counting  # type: ignore[method-assign]
    try:
        together = await asyncio.gather(*(embedder.embed_query(q) for q in questions))
    finally:
        del embedder.embed_sync
    assert sum(batches) == len(questions) and len(batches) < len(questions)
    for a, b in zip(alone, together, strict=True):
        assert float(np.dot(a, b)) > 0.999


async def test_a_query_left_by_its_caller_does_not_stop_the_others(embedder: Embedder) -> None:
    first = asyncio.ensure_future(embedder.embed_query("first"))
    second = asyncio.ensure_future(embedder.embed_query("second"))
    first.cancel()
    vector = await second
    assert len(vector) == embedder.dim
    assert (await embedder.embed_query("third")) and first.cancelled()
