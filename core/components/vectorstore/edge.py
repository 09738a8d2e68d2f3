"""Qdrant Edge backend: collections are shards in this process, one folder each under the data dir.

One process at a time: the ``qdrant/`` folder is locked while a store has it open. Shards load on
first use and stay open until the collection is dropped or the store closed.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TypeVar

import qdrant_edge as qe

from core.components.vectorstore.base import (
    DATE_FIELD,
    DENSE_VECTOR,
    EQUAL_WEIGHTS,
    INDEXED_FIELDS,
    LEGACY_COLLECTION,
    RRF_K,
    SPARSE_VECTOR,
    FusionMethod,
    VectorStore,
    legacy_message,
    prefetch_limit,
)
from core.errors import BackendError, ConfigurationError, InvalidInputError, StoreLockedError
from core.types import Chunk, ChunkPoint, SearchFilter, SearchHit, SparseVector

LOCK_FILE = "lore.lock"
ALIASES_FILE = "aliases.json"
# Written by EdgeShard.create: its presence means a shard exists in the folder.
_CONFIG_FILE = "edge_config.json"
# A dropped collection's folder is renamed with this suffix before it is deleted, so a crash
# mid-delete leaves no half shard under a collection's name.
_DROPPED = ".dropped"
_SCROLL_PAGE = 1000

_T = TypeVar("_T")


class EdgeVectorStore(VectorStore):
    """Qdrant Edge shards in ``<data_dir>/qdrant/<collection>/``; one process holds the folder while open."""

    def __init__(self, root: Path, lock_fd: int, aliases: dict[str, str]) -> None:
        self.root = root
        self._lock_fd: int | None = lock_fd
        self._shards: dict[str, qe.EdgeShard] = {}
        self._aliases = aliases
        # Edge answers queries while an update runs, so only updates and the shards'
        # create/load/close are serialised (re-entrant: an update loads its shard on first use).
        self._write_lock = threading.RLock()
        # Calls in flight per collection: a shard is closed only once none is using it.
        self._usage = threading.Condition()
        self._in_use: Counter[str] = Counter()
        self._dropping: set[str] = set()

    @classmethod
    async def open(cls, root: Path) -> EdgeVectorStore:
        """Lock ``root`` for this process; its shards load when first used."""
        return await asyncio.to_thread(cls._open, root)

    @classmethod
    def _open(cls, root: Path) -> EdgeVectorStore:
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(
                f"the vector store at {root} is locked: another Lore process (e.g. `lore serve`) is "
                "using this data dir. Stop that process, or use another data dir (LORE_DATA_DIR)."
            ) from None
        try:
            # The old layout was one shard with its own lock file in qdrant/<collection>/.
            if (
                any((child / LOCK_FILE).exists() for child in root.iterdir() if child.is_dir())
                or (root / LEGACY_COLLECTION / _CONFIG_FILE).exists()
            ):
                raise ConfigurationError(legacy_message(f"the vector store at {root}"))
            for leftover in root.glob(f"*{_DROPPED}"):
                shutil.rmtree(leftover, ignore_errors=True)
            aliases_path = root / ALIASES_FILE
            aliases = json.loads(aliases_path.read_text()) if aliases_path.exists() else {}
        except BaseException:
            os.close(fd)
            raise
        return cls(root, fd, aliases)

    async def ensure_collection(self, name: str, *, dim: int) -> bool:
        return await asyncio.to_thread(self._ensure_collection, name, dim)

    def _ensure_collection(self, name: str, dim: int) -> bool:
        path = self._path(name)
        with self._write_lock:
            self._check_open()
            created = not (path / _CONFIG_FILE).exists()
            if created:
                # A folder without a config is what a crash during create leaves.
                shutil.rmtree(path, ignore_errors=True)
                config = qe.EdgeConfig(
                    vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                    sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                )
                try:
                    self._shards[name] = qe.EdgeShard.create(str(path), config)
                except Exception as exc:
                    raise BackendError(f"cannot create a Qdrant Edge shard at {path}: {exc}") from exc
            else:
                size = _stored_dim(path)
                if size != dim:
                    raise ConfigurationError(
                        f"collection {name!r} at {path} holds {size}-dimensional dense vectors, not {dim}"
                    )
            self._call(name, _add_payload_indexes)
        return created

    async def drop_collection(self, name: str) -> None:
        await asyncio.to_thread(self._drop_collection, name)

    def _drop_collection(self, name: str) -> None:
        path = self._path(name)
        with self._usage:
            self._check_open()
            self._usage.wait_for(lambda: self._in_use[name] == 0)
            self._dropping.add(name)
        try:
            with self._write_lock:
                shard = self._shards.pop(name, None)
                if shard is not None:
                    shard.close()
                if path.exists():
                    doomed = path.with_name(path.name + _DROPPED)
                    path.rename(doomed)
                    shutil.rmtree(doomed)
                if name in self._aliases.values():
                    self._save_aliases({a: c for a, c in self._aliases.items() if c != name})
        finally:
            with self._usage:
                self._dropping.discard(name)

    async def collections(self) -> list[str]:
        def listing() -> list[str]:
            self._check_open()
            return sorted(
                child.name
                for child in self.root.iterdir()
                if (child / _CONFIG_FILE).exists() and not child.name.endswith(_DROPPED)
            )

        return await asyncio.to_thread(listing)

    async def set_alias(self, alias: str, collection: str) -> None:
        def move() -> None:
            with self._write_lock:
                self._check_open()
                if not (self._path(collection) / _CONFIG_FILE).exists():
                    raise BackendError(f"no collection {collection!r} for alias {alias!r}")
                self._save_aliases({**self._aliases, alias: collection})

        await asyncio.to_thread(move)

    async def aliases(self) -> dict[str, str]:
        self._check_open()
        return dict(self._aliases)

    async def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        if points:
            await self._update(
                name, lambda: qe.UpdateOperation.upsert_points([_edge_point(p) for p in points])
            )

    async def delete_document(
        self, name: str, document_id: str, *, keep_chunk_ids: Collection[str] = ()
    ) -> None:
        keep: set[qe.PointId] = set(keep_chunk_ids)
        selector = qe.Filter(
            must=[_match("document_id", document_id)],
            must_not=[qe.HasIdCondition(keep)] if keep else None,
        )
        await self._update(name, lambda: qe.UpdateOperation.delete_points_by_filter(selector))

    async def search(
        self,
        name: str,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        k: int,
        weights: tuple[float, float] = EQUAL_WEIGHTS,
        rrf_k: int = RRF_K,
        filter: SearchFilter | None = None,
        fusion: FusionMethod = "rrf",
    ) -> list[SearchHit]:
        request = _query_request(
            dense=dense,
            sparse=sparse,
            k=k,
            weights=weights,
            rrf_k=rrf_k,
            selector=_edge_filter(filter),
            fusion=fusion,
        )
        found = await self._read(name, lambda shard: shard.query(request))
        return [SearchHit.from_payload(point.score, point.payload or {}) for point in found]

    async def optimize(self, name: str) -> None:
        def run() -> None:
            # Writes wait; searches go on, on the segments as they were until each is swapped.
            with self._write_lock:
                self._call(name, lambda shard: shard.optimize())

        await asyncio.to_thread(run)

    async def count(self, name: str) -> int:
        return await self._read(name, lambda shard: shard.count(qe.CountRequest(exact=True)))

    async def chunk_ids(self, name: str, *, document_id: str | None = None) -> set[str]:
        selector = qe.Filter(must=[_match("document_id", document_id)]) if document_id else None
        records = await self._read(name, lambda shard: _scroll(shard, selector, ["chunk_id"]))
        return {str(record.payload["chunk_id"]) for record in records if record.payload}

    async def chunks(self, name: str, *, document_id: str) -> list[Chunk]:
        selector = qe.Filter(must=[_match("document_id", document_id)])
        records = await self._read(name, lambda shard: _scroll(shard, selector, True))
        found = [Chunk.from_payload(record.payload) for record in records if record.payload]
        return sorted(found, key=lambda chunk: chunk.ordinal)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._write_lock:
            if self._lock_fd is None:
                return
            try:
                for shard in self._shards.values():
                    shard.flush()
                    shard.close()
            finally:
                self._shards.clear()
                # Closing the descriptor releases the flock.
                os.close(self._lock_fd)
                self._lock_fd = None

    def _path(self, name: str) -> Path:
        path = self.root / name
        if path.parent != self.root or name.startswith(".") or not name:
            raise InvalidInputError(f"{name!r} is not a collection name")
        return path

    def _save_aliases(self, aliases: dict[str, str]) -> None:
        """Replace the alias file in one rename, so a reader never sees half of it."""
        temporary = self.root / f"{ALIASES_FILE}.tmp"
        temporary.write_text(json.dumps(aliases, sort_keys=True))
        os.replace(temporary, self.root / ALIASES_FILE)
        self._aliases = aliases

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise BackendError(f"the vector store at {self.root} is closed")

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._write_lock:
            if name not in self._shards:
                path = self._path(name)
                if not (path / _CONFIG_FILE).exists():
                    raise BackendError(f"no collection {name!r} in the vector store at {self.root}")
                self._shards[name] = qe.EdgeShard.load(str(path))
            return self._shards[name]

    def _call(self, name: str, action: Callable[[qe.EdgeShard], _T]) -> _T:
        name = self._aliases.get(name, name)
        with self._usage:
            self._check_open()
            if name in self._dropping:
                raise BackendError(f"collection {name!r} is being dropped")
            self._in_use[name] += 1
        try:
            shard = self._shard(name)
            try:
                return action(shard)
            except Exception as exc:
                # Edge reports every failure as a bare Exception.
                raise BackendError(f"Qdrant Edge collection {name!r} failed: {exc}") from exc
        finally:
            with self._usage:
                self._in_use[name] -= 1
                self._usage.notify_all()

    async def _read(self, name: str, action: Callable[[qe.EdgeShard], _T]) -> _T:
        return await asyncio.to_thread(self._call, name, action)

    async def _update(self, name: str, operation: Callable[[], qe.UpdateOperation]) -> None:
        """Build ``operation`` (converting points is CPU work too) and apply it, in a worker thread."""

        def apply() -> None:
            built = operation()
            with self._write_lock:
                self._call(name, lambda shard: shard.update(built))

        await asyncio.to_thread(apply)


def _stored_dim(path: Path) -> int | None:
    """The dense vector size recorded in a shard's config."""
    try:
        config = json.loads((path / _CONFIG_FILE).read_text())
        return int(config["vectors"][DENSE_VECTOR]["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"cannot read the Qdrant Edge shard config at {path}: {exc}") from exc


def _scroll(shard: qe.EdgeShard, selector: qe.Filter | None, payload: bool | list[str]) -> list[qe.Record]:
    records: list[qe.Record] = []
    offset: qe.PointId | None = None
    while True:
        page, offset = shard.scroll(
            qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, filter=selector, with_payload=payload)
        )
        records.extend(page)
        if offset is None:
            return records


def _add_payload_indexes(shard: qe.EdgeShard) -> None:
    indexed = shard.info().payload_schema
    for field in INDEXED_FIELDS:
        if field not in indexed:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
    if DATE_FIELD not in indexed:
        shard.update(qe.UpdateOperation.create_field_index(DATE_FIELD, qe.PayloadSchemaType.Integer))


def _edge_filter(chosen: SearchFilter | None) -> qe.Filter | None:
    if not chosen:
        return None
    must: list[qe.FieldCondition] = []
    if chosen.sources:
        must.append(qe.FieldCondition("source", match=qe.MatchAny(list(chosen.sources))))
    if chosen.doc_types:
        must.append(qe.FieldCondition("doc_type", match=qe.MatchAny(list(chosen.doc_types))))
    if chosen.modified_from is not None or chosen.modified_to is not None:
        span = qe.RangeFloat(gte=chosen.modified_from, lte=chosen.modified_to)
        must.append(qe.FieldCondition(DATE_FIELD, range=span))
    return qe.Filter(must=list(must))


def _edge_point(point: ChunkPoint) -> qe.Point:
    vectors: dict[str, qe.NamedVector] = {DENSE_VECTOR: point.dense}
    # An empty sparse vector is left out: Edge and local mode disagree on counting it in IDF's total.
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = qe.SparseVector(point.sparse.indices, point.sparse.values)
    return qe.Point(point.chunk.id, vectors, point.chunk.payload())


def _match(field: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(field, match=qe.MatchValue(value))


def _query_request(
    *,
    dense: Sequence[float] | None,
    sparse: SparseVector | None,
    k: int,
    weights: tuple[float, float],
    rrf_k: int,
    selector: qe.Filter | None = None,
    fusion: FusionMethod = "rrf",
) -> qe.QueryRequest:
    # IDF over the collection's live points: Edge's collection-wide statistics go on counting
    # deleted points until segments are vacuumed, and an empty filter counts live points only.
    sparse_params = qe.SearchParams(idf=qe.IdfParams(corpus=qe.Filter()))
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
                qe.Prefetch(limit=candidates, query=dense_query, filter=selector),
                qe.Prefetch(limit=candidates, query=sparse_query, params=sparse_params, filter=selector),
            ],
            # The stub's ScoringQueryType names Fusion but not its classes, which Edge accepts.
            query=(
                qe.Fusion.Dbsf()  # type: ignore[arg-type]
                if fusion == "dbsf"
                else qe.Fusion.Rrf(k=rrf_k, weights=list(weights))
            ),
            filter=selector,
            with_payload=True,
        )
    if dense_query is not None:
        return qe.QueryRequest(limit=k, query=dense_query, filter=selector, with_payload=True)
    if sparse_query is not None:
        return qe.QueryRequest(
            limit=k, query=sparse_query, params=sparse_params, filter=selector, with_payload=True
        )
    raise InvalidInputError("a search needs a dense vector, a sparse vector or both")
