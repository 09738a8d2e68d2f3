"""The vector store interface that both backends (Qdrant Edge, Qdrant server) implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

from core.types import ChunkPoint, SearchHit, SparseVector

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
# Payload fields that searches and deletes filter by; each gets a keyword payload index.
INDEXED_FIELDS = ("corpus", "document_id", "source")
# RRF's k constant, as in the original paper. Qdrant's own default is 2, so both backends pass it.
RRF_K = 60


def prefetch_limit(k: int) -> int:
    """Candidates each ranking contributes to RRF in a hybrid top-``k`` search."""
    return max(4 * k, 20)


class VectorStore(ABC):
    """Chunks with dense and sparse vectors, searched by corpus.

    Every method is async; embedded backends run their work off the event loop.
    """

    @abstractmethod
    async def ensure_collection(self, *, dim: int) -> None:
        """Create the collection (dense size ``dim``, sparse BM25 with IDF, payload indexes) if missing."""

    @abstractmethod
    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        """Insert or replace points by chunk ID (idempotent)."""

    @abstractmethod
    async def delete_document(self, document_id: str, *, keep_chunk_ids: Collection[str] = ()) -> None:
        """Delete a document's chunks, except those in ``keep_chunk_ids``."""

    @abstractmethod
    async def delete_corpus(self, corpus: str) -> None:
        """Delete every chunk of a corpus."""

    @abstractmethod
    async def search(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        corpora: Sequence[str] | None,
        k: int,
    ) -> list[SearchHit]:
        """Top ``k`` chunks within ``corpora`` (None: all corpora; empty: nothing).

        With both vectors the two rankings are fused with RRF inside the store; with one, that
        ranking alone. The corpus filter is applied inside the store query, never after it.
        """

    @abstractmethod
    async def count(self, *, corpus: str | None = None) -> int:
        """Number of chunks, in one corpus or in all."""

    @abstractmethod
    async def chunk_ids(self, *, corpus: str | None = None, document_id: str | None = None) -> set[str]:
        """IDs of the stored chunks matching the filters (for verification and tests)."""

    @abstractmethod
    async def close(self) -> None:
        """Flush and release the store."""
