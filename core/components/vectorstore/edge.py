"""Qdrant Edge backend: the collection is a shard in this process, under the data dir.

One process at a time: the shard directory is locked while a store has it open.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TypeVar

import qdrant_edge as qe

from core.components.vectorstore.base import (
    DENSE_VECTOR,
    INDEXED_FIELDS,
    RRF_K,
    SPARSE_VECTOR,
    VectorStore,
    prefetch_limit,
)
from core.errors import BackendError, ConfigurationError, InvalidInputError, StoreLockedError
from core.types import ChunkPoint, SearchHit, SparseVector

LOCK_FILE = "lore.lock"
# Written by EdgeShard.create: its presence means a shard exists in the directory.
_CONFIG_FILE = "edge_config.json"
_SCROLL_PAGE = 1000

_T = TypeVar("_T")


class EdgeVectorStore(VectorStore):
    """A Qdrant Edge shard at ``<data_dir>/qdrant/<collection>``, held by one process while open."""

    def __init__(self, path: Path, lock_fd: int, shard: qe.EdgeShard | None) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._shard = shard
        # Edge answers queries while an update runs, so only updates and the shard's
        # create/reload/close are serialised.
        self._write_lock = threading.Lock()

    @classmethod
    async def open(cls, path: Path) -> EdgeVectorStore:
        """Lock ``path`` for this process and load the shard there, if there is one."""
        return await asyncio.to_thread(cls._open, path)

    @classmethod
    def _open(cls, path: Path) -> EdgeVectorStore:
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"the vector store at {path} is locked: another Lore process (e.g. `lore serve`) is "
                "using this data dir. Stop that process, or use another data dir (LORE_DATA_DIR)."
            ) from None
        try:
            shard = qe.EdgeShard.load(str(path)) if (path / _CONFIG_FILE).exists() else None
        except Exception as exc:
            os.close(fd)
            raise BackendError(f"cannot load the Qdrant Edge shard at {path}: {exc}") from exc
        return cls(path, fd, shard)

    async def ensure_collection(self, *, dim: int) -> None:
        await asyncio.to_thread(self._ensure_collection, dim)

    def _ensure_collection(self, dim: int) -> None:
        config = qe.EdgeConfig(
            vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        with self._write_lock:
            self._check_open()
            if self._shard is None:
                try:
                    self._shard = qe.EdgeShard.create(str(self.path), config)
                except Exception as exc:
                    raise BackendError(f"cannot create a Qdrant Edge shard at {self.path}: {exc}") from exc
            else:
                # Loading with a config is how Edge checks an existing shard against it (e.g. the size).
                self._shard.close()
                self._shard = None
                try:
                    self._shard = qe.EdgeShard.load(str(self.path), config)
                except Exception as exc:
                    self._shard = qe.EdgeShard.load(str(self.path))
                    raise ConfigurationError(
                        f"the vector store at {self.path} does not fit {dim}-dimensional embeddings: {exc}. "
                        "Use another collection name for another embedding model, or delete this one."
                    ) from exc
            self._call(_add_payload_indexes)

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        if points:
            await self._update(lambda: qe.UpdateOperation.upsert_points([_edge_point(p) for p in points]))

    async def delete_document(self, document_id: str, *, keep_chunk_ids: Collection[str] = ()) -> None:
        keep: set[qe.PointId] = set(keep_chunk_ids)
        selector = qe.Filter(
            must=[_match("document_id", document_id)],
            must_not=[qe.HasIdCondition(keep)] if keep else None,
        )
        await self._update(lambda: qe.UpdateOperation.delete_points_by_filter(selector))

    async def delete_corpus(self, corpus: str) -> None:
        selector = qe.Filter(must=[_match("corpus", corpus)])
        await self._update(lambda: qe.UpdateOperation.delete_points_by_filter(selector))

    async def search(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        corpora: Sequence[str] | None,
        k: int,
    ) -> list[SearchHit]:
        if corpora is not None and not corpora:
            return []
        request = _query_request(dense=dense, sparse=sparse, corpora=corpora, k=k)
        found = await self._read(lambda shard: shard.query(request))
        return [SearchHit.from_payload(point.score, point.payload or {}) for point in found]

    async def count(self, *, corpus: str | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_filter(corpus=corpus))
        return await self._read(lambda shard: shard.count(request))

    async def chunk_ids(self, *, corpus: str | None = None, document_id: str | None = None) -> set[str]:
        selector = _filter(corpus=corpus, document_id=document_id)

        def scroll_all(shard: qe.EdgeShard) -> set[str]:
            ids: set[str] = set()
            offset: qe.PointId | None = None
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=_SCROLL_PAGE, filter=selector, with_payload=["chunk_id"]
                    )
                )
                ids.update(str(record.payload["chunk_id"]) for record in records if record.payload)
                if offset is None:
                    return ids

        return await self._read(scroll_all)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._write_lock:
            if self._lock_fd is None:
                return
            try:
                if self._shard is not None:
                    self._shard.flush()
                    self._shard.close()
            finally:
                self._shard = None
                # Closing the descriptor releases the flock.
                os.close(self._lock_fd)
                self._lock_fd = None

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise BackendError(f"the vector store at {self.path} is closed")

    def _call(self, action: Callable[[qe.EdgeShard], _T]) -> _T:
        self._check_open()
        shard = self._shard
        if shard is None:
            raise BackendError(f"no collection at {self.path} yet: ensure_collection creates it")
        try:
            return action(shard)
        except Exception as exc:
            # Edge reports every failure as a bare Exception.
            raise BackendError(f"Qdrant Edge at {self.path} failed: {exc}") from exc

    async def _read(self, action: Callable[[qe.EdgeShard], _T]) -> _T:
        return await asyncio.to_thread(self._call, action)

    async def _update(self, operation: Callable[[], qe.UpdateOperation]) -> None:
        """Build ``operation`` (converting points is CPU work too) and apply it, in a worker thread."""

        def apply() -> None:
            built = operation()
            with self._write_lock:
                self._call(lambda shard: shard.update(built))

        await asyncio.to_thread(apply)


def _add_payload_indexes(shard: qe.EdgeShard) -> None:
    indexed = shard.info().payload_schema
    for field in INDEXED_FIELDS:
        if field not in indexed:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))


def _edge_point(point: ChunkPoint) -> qe.Point:
    vectors: dict[str, qe.NamedVector] = {DENSE_VECTOR: point.dense}
    # An empty sparse vector is left out: Edge and local mode disagree on counting it in IDF's total.
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = qe.SparseVector(point.sparse.indices, point.sparse.values)
    return qe.Point(point.chunk.id, vectors, point.chunk.payload())


def _match(field: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(field, match=qe.MatchValue(value))


def _filter(*, corpus: str | None = None, document_id: str | None = None) -> qe.Filter | None:
    pairs = (("corpus", corpus), ("document_id", document_id))
    conditions: list[qe.ConditionType] = [_match(field, value) for field, value in pairs if value is not None]
    return qe.Filter(must=conditions) if conditions else None


def _query_request(
    *, dense: Sequence[float] | None, sparse: SparseVector | None, corpora: Sequence[str] | None, k: int
) -> qe.QueryRequest:
    corpus_filter = (
        qe.Filter(must=[qe.FieldCondition("corpus", match=qe.MatchAny(list(corpora)))])
        if corpora is not None
        else None
    )
    # IDF over the live points of the searched corpora: BM25 within a corpus ignores the others,
    # and Edge's collection-wide statistics go on counting deleted points until segments are vacuumed.
    sparse_params = qe.SearchParams(
        idf=qe.IdfParams(corpus=corpus_filter if corpus_filter is not None else qe.Filter())
    )
    dense_query = qe.Query.Nearest(list(dense), using=DENSE_VECTOR) if dense is not None else None
    sparse_query = (
        qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE_VECTOR)
        if sparse is not None
        else None
    )
    if dense_query is not None and sparse_query is not None:
        candidates = prefetch_limit(k)
        return qe.QueryRequest(
            limit=k,
            prefetches=[
                qe.Prefetch(limit=candidates, query=dense_query),
                qe.Prefetch(limit=candidates, query=sparse_query, params=sparse_params),
            ],
            # The stub's ScoringQueryType names Fusion but not its Rrf class, which Edge accepts.
            query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]
            filter=corpus_filter,
            with_payload=True,
        )
    if dense_query is not None:
        return qe.QueryRequest(limit=k, query=dense_query, filter=corpus_filter, with_payload=True)
    if sparse_query is not None:
        return qe.QueryRequest(
            limit=k, query=sparse_query, filter=corpus_filter, params=sparse_params, with_payload=True
        )
    raise InvalidInputError("a search needs a dense vector, a sparse vector or both")
