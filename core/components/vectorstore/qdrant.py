"""Qdrant server backend via ``qdrant-client``, whose local mode (``:memory:``, ``path:DIR``) tests use."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ApiException

from core.components.vectorstore.base import (
    DENSE_VECTOR,
    INDEXED_FIELDS,
    RRF_K,
    SPARSE_VECTOR,
    VectorStore,
    prefetch_limit,
)
from core.errors import BackendError, ConfigurationError, InvalidInputError
from core.settings import VectorStoreSettings
from core.types import ChunkPoint, SearchHit, SparseVector

# Points per upsert request: keeps requests far below the server's 32 MiB default limit.
_UPSERT_BATCH = 256
_SCROLL_PAGE = 1000


class QdrantVectorStore(VectorStore):
    """A collection in a Qdrant server, or in qdrant-client's local mode."""

    def __init__(self, client: AsyncQdrantClient, collection: str, *, local: bool) -> None:
        self._client = client
        self.collection = collection
        self._local = local

    @classmethod
    def connect(cls, settings: VectorStoreSettings) -> QdrantVectorStore:
        """A store for ``settings.url``: an http(s) URL, ``:memory:`` or ``path:DIR``."""
        url = settings.url or ""
        if url == ":memory:":
            return cls(AsyncQdrantClient(location=":memory:"), settings.collection, local=True)
        if url.startswith("path:"):
            return cls(AsyncQdrantClient(path=url.removeprefix("path:")), settings.collection, local=True)
        if url.startswith(("http://", "https://")):
            client = AsyncQdrantClient(
                url=url, api_key=settings.api_key, timeout=math.ceil(settings.timeout_s)
            )
            return cls(client, settings.collection, local=False)
        raise ConfigurationError(
            f"vector store URL {url!r} is neither http(s)://HOST:PORT, ':memory:' nor 'path:DIR'"
        )

    async def ensure_collection(self, *, dim: int) -> None:
        with _backend_errors():
            if not await self._client.collection_exists(self.collection):
                await self._client.create_collection(
                    self.collection,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                    },
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
            info = await self._client.get_collection(self.collection)
            vectors = info.config.params.vectors
            size = (
                vectors[DENSE_VECTOR].size if isinstance(vectors, dict) and DENSE_VECTOR in vectors else None
            )
            if size != dim:
                raise ConfigurationError(
                    f"collection {self.collection!r} holds {size}-dimensional dense vectors, not {dim}. "
                    "Use another collection name for another embedding model, or delete this one."
                )
            # Local mode has no payload indexes: it warns and ignores them.
            if not self._local:
                for field in INDEXED_FIELDS:
                    if field not in info.payload_schema:
                        await self._client.create_payload_index(
                            self.collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                        )

    async def upsert(self, points: Sequence[ChunkPoint]) -> None:
        with _backend_errors():
            for start in range(0, len(points), _UPSERT_BATCH):
                batch = [_point_struct(point) for point in points[start : start + _UPSERT_BATCH]]
                await self._client.upsert(self.collection, batch, wait=True)

    async def delete_document(self, document_id: str, *, keep_chunk_ids: Collection[str] = ()) -> None:
        keep: list[models.ExtendedPointId] = list(keep_chunk_ids)
        selector = models.Filter(
            must=[_match("document_id", document_id)],
            must_not=[models.HasIdCondition(has_id=keep)] if keep else None,
        )
        await self._delete(selector)

    async def delete_corpus(self, corpus: str) -> None:
        await self._delete(models.Filter(must=[_match("corpus", corpus)]))

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
        corpus_filter = (
            models.Filter(
                must=[models.FieldCondition(key="corpus", match=models.MatchAny(any=list(corpora)))]
            )
            if corpora is not None
            else None
        )
        # IDF over the live points of the searched corpora, as the Edge backend does (needs Qdrant 1.19+).
        sparse_params = models.SearchParams(
            idf=models.IdfCorpusParams(corpus=corpus_filter if corpus_filter is not None else models.Filter())
        )
        sparse_query = (
            models.SparseVector(indices=sparse.indices, values=sparse.values) if sparse is not None else None
        )
        with _backend_errors():
            if dense is not None and sparse_query is not None:
                candidates = prefetch_limit(k)
                response = await self._client.query_points(
                    self.collection,
                    prefetch=[
                        models.Prefetch(query=list(dense), using=DENSE_VECTOR, limit=candidates),
                        models.Prefetch(
                            query=sparse_query, using=SPARSE_VECTOR, limit=candidates, params=sparse_params
                        ),
                    ],
                    # Not FusionQuery(RRF): that uses Qdrant's default k of 2.
                    query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                    query_filter=corpus_filter,
                    limit=k,
                    with_payload=True,
                )
            elif dense is not None:
                response = await self._client.query_points(
                    self.collection,
                    query=list(dense),
                    using=DENSE_VECTOR,
                    query_filter=corpus_filter,
                    limit=k,
                    with_payload=True,
                )
            elif sparse_query is not None:
                response = await self._client.query_points(
                    self.collection,
                    query=sparse_query,
                    using=SPARSE_VECTOR,
                    query_filter=corpus_filter,
                    search_params=sparse_params,
                    limit=k,
                    with_payload=True,
                )
            else:
                raise InvalidInputError("a search needs a dense vector, a sparse vector or both")
        return [SearchHit.from_payload(point.score, point.payload or {}) for point in response.points]

    async def count(self, *, corpus: str | None = None) -> int:
        with _backend_errors():
            result = await self._client.count(
                self.collection, count_filter=_filter(corpus=corpus), exact=True
            )
        return result.count

    async def chunk_ids(self, *, corpus: str | None = None, document_id: str | None = None) -> set[str]:
        selector = _filter(corpus=corpus, document_id=document_id)
        ids: set[str] = set()
        offset: models.ExtendedPointId | None = None
        with _backend_errors():
            while True:
                records, offset = await self._client.scroll(
                    self.collection,
                    scroll_filter=selector,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=["chunk_id"],
                )
                ids.update(str(record.payload["chunk_id"]) for record in records if record.payload)
                if offset is None:
                    return ids

    async def close(self) -> None:
        await self._client.close()

    async def _delete(self, selector: models.Filter) -> None:
        with _backend_errors():
            await self._client.delete(self.collection, models.FilterSelector(filter=selector), wait=True)


@contextmanager
def _backend_errors() -> Iterator[None]:
    """Report the server's failures (HTTP errors, unreachable host) as Lore's BackendError."""
    try:
        yield
    except ApiException as exc:
        raise BackendError(f"Qdrant request failed: {exc}") from exc


def _point_struct(point: ChunkPoint) -> models.PointStruct:
    vectors: dict[str, models.Vector] = {DENSE_VECTOR: list(point.dense)}
    # An empty sparse vector is left out: Edge and local mode disagree on counting it in IDF's total.
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = models.SparseVector(indices=point.sparse.indices, values=point.sparse.values)
    return models.PointStruct(id=point.chunk.id, vector=vectors, payload=point.chunk.payload())


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


def _filter(*, corpus: str | None = None, document_id: str | None = None) -> models.Filter | None:
    pairs = (("corpus", corpus), ("document_id", document_id))
    conditions: list[models.Condition] = [_match(field, value) for field, value in pairs if value is not None]
    return models.Filter(must=conditions) if conditions else None
