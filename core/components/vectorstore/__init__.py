"""Vector store adapter: Qdrant Edge in process by default, a Qdrant server when a URL is set."""

from __future__ import annotations

from core.components.vectorstore.base import VectorStore
from core.components.vectorstore.sparse import Bm25Encoder
from core.settings import Settings

__all__ = ["Bm25Encoder", "VectorStore", "open_vector_store"]


async def open_vector_store(settings: Settings) -> VectorStore:
    """The store the settings choose: Edge under the data dir, or Qdrant when ``vector_store.url`` is set."""
    # Each backend imports only its own client library: qdrant-client alone takes half a second.
    if settings.vector_store.url is None:
        from core.components.vectorstore.edge import EdgeVectorStore

        return await EdgeVectorStore.open(settings.data_dir / "qdrant")
    from core.components.vectorstore.qdrant import QdrantVectorStore

    return await QdrantVectorStore.open(settings.vector_store)
