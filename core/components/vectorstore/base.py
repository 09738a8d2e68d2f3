"""The vector store interface that both backends (Qdrant Edge, Qdrant server) implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Literal

from core.types import Chunk, ChunkPoint, SearchFilter, SearchHit, SparseVector

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
# Payload fields that searches and deletes filter by; each gets a keyword payload index.
INDEXED_FIELDS = ("corpus", "document_id", "source", "doc_type")
# The document date (Unix seconds) that searches filter by range; it gets an integer index.
DATE_FIELD = "modified"
# RRF's k constant, as in the original paper. Qdrant's own default is 2, so both backends pass it.
RRF_K = 60
# The single collection of Lore before collections per corpus: its presence means an old data dir.
LEGACY_COLLECTION = "lore_chunks"


# Weights of the dense and the sparse ranking in RRF; equal weights are plain RRF.
EQUAL_WEIGHTS = (1.0, 1.0)
# How a hybrid search fuses its dense and sparse rankings: reciprocal rank fusion, or
# distribution-based score fusion (each ranking's scores scaled by their mean +- 3 standard
# deviations, then summed).
FusionMethod = Literal["rrf", "dbsf"]


def prefetch_limit(k: int) -> int:
    """Candidates each ranking contributes to fusion in a hybrid top-``k`` search.

    At least 100: DBSF scales a ranking's scores by their spread over these candidates, and a
    short list's spread is a noisy estimate (measured on SciFact: docs/retrieval.md).
    """
    return max(4 * k, 100)


def legacy_message(where: str) -> str:
    return (
        f"{where} holds chunks in the single `{LEGACY_COLLECTION}` collection of an older Lore; Lore now "
        "keeps one collection per corpus. Delete that vector store (the data dir's qdrant/ folder, or the "
        "collection on the Qdrant server) and ingest your documents again: the database keeps your "
        "corpora, and every document is embedded anew at its next ingest."
    )


class VectorStore(ABC):
    """Named collections of chunks with dense and sparse vectors, plus aliases naming collections.

    Every method is async; embedded backends run their work off the event loop. Methods that
    take a collection ``name`` raise ``BackendError`` when it does not exist, except
    ``ensure_collection`` (which creates it) and ``drop_collection`` (which ignores it).
    """

    @abstractmethod
    async def ensure_collection(self, name: str, *, dim: int) -> bool:
        """Create collection ``name`` (dense size ``dim``, sparse BM25 with IDF, payload indexes) if missing.

        Returns True when it was created. An existing collection of another size is refused.
        """

    @abstractmethod
    async def drop_collection(self, name: str) -> None:
        """Delete collection ``name`` with its chunks and the aliases naming it (nothing if missing)."""

    @abstractmethod
    async def collections(self) -> list[str]:
        """Names of the existing collections, sorted (this is also the store's health check)."""

    @abstractmethod
    async def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one atomic step, moving it if it named another."""

    @abstractmethod
    async def aliases(self) -> dict[str, str]:
        """Every alias with the collection it names."""

    @abstractmethod
    async def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        """Insert or replace points by chunk ID (idempotent)."""

    @abstractmethod
    async def delete_document(
        self, name: str, document_id: str, *, keep_chunk_ids: Collection[str] = ()
    ) -> None:
        """Delete a document's chunks, except those in ``keep_chunk_ids``."""

    @abstractmethod
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
        """Top ``k`` chunks of collection ``name`` (those ``filter`` admits, when given).

        The filter is part of the store's query (each prefetch's too), so a filtered search still
        returns ``k`` chunks when the collection holds that many matching ones.

        With both vectors the two rankings (``prefetch_limit(k)`` candidates each) are fused
        inside the store. ``fusion="rrf"``: Qdrant weights a ranking by dividing its ranks, a chunk
        at rank r (from 1) gets ``1 / (r / weight + rrf_k - 1)`` (``weights``: dense, sparse; equal
        weights are plain RRF; ``rrf_k``: RRF's constant). ``fusion="dbsf"``: each ranking's scores
        are scaled to [0, 1] over their mean +- 3 standard deviations and summed (weights and
        ``rrf_k`` unused). With one vector, that ranking alone.
        """

    @abstractmethod
    async def optimize(self, name: str) -> None:
        """Build collection ``name``'s search indexes after bulk writes.

        The embedded store indexes only when asked (until then a search scans every new point); a
        Qdrant server optimises in the background by itself, so its backend does nothing here.
        """

    @abstractmethod
    async def count(self, name: str) -> int:
        """Number of chunks in the collection."""

    @abstractmethod
    async def chunk_ids(self, name: str, *, document_id: str | None = None) -> set[str]:
        """IDs of the collection's chunks, or of one document's (for verification and tests)."""

    @abstractmethod
    async def chunks(self, name: str, *, document_id: str) -> list[Chunk]:
        """A document's stored chunks, payload only, in ordinal order (to re-embed their texts)."""

    @abstractmethod
    async def close(self) -> None:
        """Flush and release the store."""
