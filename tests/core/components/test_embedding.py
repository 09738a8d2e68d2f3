"""Embedder precision and runtime: speed choices that must not change what is found."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.components import embedding
from core.components.embedding import Embedder, resolve_dtype
from core.errors import ConfigurationError
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


# Texts of many lengths, so batches are padded: surrounding spaces, a single word, and one longer
# than the model's 256-token window (truncated alike by both runtimes).
VARIED = [
    *TEXTS,
    "x",
    "   padded with spaces   ",
    "What does Lore do when the documents lack the answer?",
    " ".join(f"Sentence {n} of a long document about vector stores and citations." for n in range(60)),
]


def test_onnx_runtime_gives_torch_vectors() -> None:
    onnx = Embedder(EmbeddingSettings(dtype="float32"))
    torch_ = Embedder(EmbeddingSettings(dtype="float32", runtime="torch"))
    assert (onnx.runtime, torch_.runtime) == ("onnx", "torch")
    a, b = np.array(onnx.embed_sync(VARIED)), np.array(torch_.embed_sync(VARIED))
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.9999
    # One at a time (no padding) gives the same vectors as in a batch.
    alone = np.array([onnx.embed_sync([text])[0] for text in VARIED])
    assert float((alone * a).sum(axis=1).min()) > 0.9999


def test_another_mean_pooling_model_runs_on_onnx_too(tiny_model: Path) -> None:
    onnx = Embedder(EmbeddingSettings(model=str(tiny_model), dtype="float32"))
    torch_ = Embedder(EmbeddingSettings(model=str(tiny_model), dtype="float32", runtime="torch"))
    assert onnx.runtime == "onnx" and onnx.dim == 32
    a, b = np.array(onnx.embed_sync(VARIED)), np.array(torch_.embed_sync(VARIED))
    assert float((a * b).sum(axis=1).min()) > 0.9999


def test_onnx_is_only_used_where_it_gives_the_same_vectors(tmp_path: Path, tiny_model: Path) -> None:
    # Reduced precision stays on torch under auto, and asking for onnx there is refused.
    assert Embedder(EmbeddingSettings(dtype="bfloat16")).runtime == "torch"
    with pytest.raises(ConfigurationError, match="runs in bfloat16"):
        Embedder(EmbeddingSettings(dtype="bfloat16", runtime="onnx"))
    # A pooling other than the mean is not exported.
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    model = SentenceTransformer(str(tiny_model))
    model[1] = Pooling(model[0].get_embedding_dimension(), pooling_mode="cls")
    model.save(str(tmp_path / "cls"))
    assert Embedder(EmbeddingSettings(model=str(tmp_path / "cls"), dtype="float32")).runtime == "torch"
    with pytest.raises(ConfigurationError, match="only a transformer with mean pooling"):
        Embedder(EmbeddingSettings(model=str(tmp_path / "cls"), dtype="float32", runtime="onnx"))
