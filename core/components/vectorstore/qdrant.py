"""Qdrant server backend via ``qdrant-client``, whose local mode (``:memory:``, ``path:DIR``) tests use.

Each corpus's serving generation is also named by a Qdrant alias, moved atomically at a switch.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ApiException

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
from core.errors import BackendError, ConfigurationError, InvalidInputError
from core.settings import VectorStoreSettings
from core.types import Chunk, ChunkPoint, SearchFilter, SearchHit, SparseVector

# Points per upsert request: keeps requests far below the server's 32 MiB default limit.
_UPSERT_BATCH = 256
_SCROLL_PAGE = 1000


class QdrantVectorStore(VectorStore):
    """Collections in a Qdrant server, or in qdrant-client's local mode."""

    def __init__(self, client: AsyncQdrantClient, *, local: bool) -> None:
        self._client = client
        self._local = local

    @classmethod
    def connect(cls, settings: VectorStoreSettings) -> QdrantVectorStore:
        """A store for ``settings.url``: an http(s) URL, ``:memory:`` or ``path:DIR``."""
        url = settings.url or ""
        if url == ":memory:":
            return cls(AsyncQdrantClient(location=":memory:"), local=True)
        if url.startswith("path:"):
            return cls(AsyncQdrantClient(path=url.removeprefix("path:")), local=True)
        if url.startswith(("http://", "https://")):
            client = AsyncQdrantClient(
                url=url, api_key=settings.api_key, timeout=math.ceil(settings.timeout_s)
            )
            return cls(client, local=False)
        raise ConfigurationError(
            f"vector store URL {url!r} is neither http(s)://HOST:PORT, ':memory:' nor 'path:DIR'"
        )

    @classmethod
    async def open(cls, settings: VectorStoreSettings) -> QdrantVectorStore:
        """Connect, and refuse a server that still holds an older Lore's single collection."""
        store = cls.connect(settings)
        try:
            with _backend_errors():
                legacy = await store._client.collection_exists(LEGACY_COLLECTION)
            if legacy:
                raise ConfigurationError(legacy_message(f"the Qdrant at {settings.url}"))
        except BaseException:
            await store.close()
            raise
        return store

    async def ensure_collection(self, name: str, *, dim: int) -> bool:
        with _backend_errors():
            created = not await self._client.collection_exists(name)
            if created:
                await self._client.create_collection(
                    name,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                    },
                    sparse_vectors_config={
                        SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
            info = await self._client.get_collection(name)
            vectors = info.config.params.vectors
            size = (
                vectors[DENSE_VECTOR].size if isinstance(vectors, dict) and DENSE_VECTOR in vectors else None
            )
            if size != dim:
                raise ConfigurationError(
                    f"collection {name!r} holds {size}-dimensional dense vectors, not {dim}"
                )
            # Local mode has no payload indexes: it warns and ignores them.
            if not self._local:
                for field in INDEXED_FIELDS:
                    if field not in info.payload_schema:
                        await self._client.create_payload_index(
                            name, field, models.PayloadSchemaType.KEYWORD, wait=True
                        )
                if DATE_FIELD not in info.payload_schema:
                    await self._client.create_payload_index(
                        name, DATE_FIELD, models.PayloadSchemaType.INTEGER, wait=True
                    )
        return created

    async def drop_collection(self, name: str) -> None:
        with _backend_errors():
            # Qdrant deletes the aliases naming a collection with it.
            if await self._client.collection_exists(name):
                await self._client.delete_collection(name)

    async def collections(self) -> list[str]:
        with _backend_errors():
            response = await self._client.get_collections()
        return sorted(collection.name for collection in response.collections)

    async def set_alias(self, alias: str, collection: str) -> None:
        with _backend_errors():
            if not await self._client.collection_exists(collection):
                raise BackendError(f"no collection {collection!r} for alias {alias!r}")
            operations: list[models.AliasOperations] = []
            if alias in await self.aliases():
                operations.append(
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                )
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
                )
            )
            # One request: Qdrant applies the delete and the create atomically, so a reader of the
            # alias sees the old collection or the new one, never none.
            await self._client.update_collection_aliases(change_aliases_operations=operations)

    async def aliases(self) -> dict[str, str]:
        with _backend_errors():
            response = await self._client.get_aliases()
        return {alias.alias_name: alias.collection_name for alias in response.aliases}

    async def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        with _backend_errors():
            for start in range(0, len(points), _UPSERT_BATCH):
                batch = [_point_struct(point) for point in points[start : start + _UPSERT_BATCH]]
                await self._client.upsert(name, batch, wait=True)

    async def delete_document(
        self, name: str, document_id: str, *, keep_chunk_ids: Collection[str] = ()
    ) -> None:
        keep: list[models.ExtendedPointId] = list(keep_chunk_ids)
        selector = models.Filter(
            must=[_match("document_id", document_id)],
            must_not=[models.HasIdCondition(has_id=keep)] if keep else None,
        )
        with _backend_errors():
            await self._client.delete(name, models.FilterSelector(filter=selector), wait=True)

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
        selector = _server_filter(filter)
        # IDF over the collection's live points, as the Edge backend does (needs Qdrant 1.19+).
        sparse_params = models.SearchParams(idf=models.IdfCorpusParams(corpus=models.Filter()))
        sparse_query = (
            models.SparseVector(indices=sparse.indices, values=sparse.values) if sparse is not None else None
        )
        with _backend_errors():
            if dense is not None and sparse_query is not None:
                candidates = prefetch_limit(k)
                response = await self._client.query_points(
                    name,
                    prefetch=[
                        models.Prefetch(
                            query=list(dense), using=DENSE_VECTOR, limit=candidates, filter=selector
                        ),
                        models.Prefetch(
                            query=sparse_query,
                            using=SPARSE_VECTOR,
                            limit=candidates,
                            params=sparse_params,
                            filter=selector,
                        ),
                    ],
                    # Not FusionQuery(RRF): that uses Qdrant's default k of 2.
                    # Equal weights are sent as none, which Qdrant servers before weighted RRF accept.
                    query=(
                        models.FusionQuery(fusion=models.Fusion.DBSF)
                        if fusion == "dbsf"
                        else models.RrfQuery(
                            rrf=models.Rrf(
                                k=rrf_k, weights=None if weights == EQUAL_WEIGHTS else list(weights)
                            )
                        )
                    ),
                    query_filter=selector,
                    limit=k,
                    with_payload=True,
                )
            elif dense is not None:
                response = await self._client.query_points(
                    name,
                    query=list(dense),
                    using=DENSE_VECTOR,
                    query_filter=selector,
                    limit=k,
                    with_payload=True,
                )
            elif sparse_query is not None:
                response = await self._client.query_points(
                    name,
                    query=sparse_query,
                    using=SPARSE_VECTOR,
                    search_params=sparse_params,
                    query_filter=selector,
                    limit=k,
                    with_payload=True,
                )
            else:
                raise InvalidInputError("a search needs a dense vector, a sparse vector or both")
        return [SearchHit.from_payload(point.score, point.payload or {}) for point in response.points]

    async def optimize(self, name: str) -> None:
        # A Qdrant server's optimizers index new points in the background; local mode has no index.
        return None

    async def count(self, name: str) -> int:
        with _backend_errors():
            result = await self._client.count(name, exact=True)
        return result.count

    async def chunk_ids(self, name: str, *, document_id: str | None = None) -> set[str]:
        selector = models.Filter(must=[_match("document_id", document_id)]) if document_id else None
        records = await self._scroll(name, selector, ["chunk_id"])
        return {str(record.payload["chunk_id"]) for record in records if record.payload}

    async def chunks(self, name: str, *, document_id: str) -> list[Chunk]:
        records = await self._scroll(name, models.Filter(must=[_match("document_id", document_id)]), True)
        found = [Chunk.from_payload(record.payload) for record in records if record.payload]
        return sorted(found, key=lambda chunk: chunk.ordinal)

    async def close(self) -> None:
        await self._client.close()

    async def _scroll(
        self, name: str, selector: models.Filter | None, payload: bool | list[str]
    ) -> list[models.Record]:
        records: list[models.Record] = []
        offset: models.ExtendedPointId | None = None
        with _backend_errors():
            while True:
                page, offset = await self._client.scroll(
                    name, scroll_filter=selector, limit=_SCROLL_PAGE, offset=offset, with_payload=payload
                )
                records.extend(page)
                if offset is None:
                    return records


@contextmanager
def _backend_errors() -> Iterator[None]:
    """Report the server's failures (HTTP errors, unreachable host) as Lore's BackendError.

    Local mode reports a missing collection as ValueError and a closed client as RuntimeError.
    """
    try:
        yield
    except (ApiException, ValueError, RuntimeError) as exc:
        raise BackendError(f"Qdrant request failed: {exc}") from exc


def _point_struct(point: ChunkPoint) -> models.PointStruct:
    vectors: dict[str, models.Vector] = {DENSE_VECTOR: list(point.dense)}
    # An empty sparse vector is left out: Edge and local mode disagree on counting it in IDF's total.
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE_VECTOR] = models.SparseVector(indices=point.sparse.indices, values=point.sparse.values)
    return models.PointStruct(id=point.chunk.id, vector=vectors, payload=point.chunk.payload())


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


def _server_filter(chosen: SearchFilter | None) -> models.Filter | None:
    if not chosen:
        return None
    must: list[models.Condition] = []
    if chosen.sources:
        must.append(models.FieldCondition(key="source", match=models.MatchAny(any=list(chosen.sources))))
    if chosen.doc_types:
        must.append(models.FieldCondition(key="doc_type", match=models.MatchAny(any=list(chosen.doc_types))))
    if chosen.modified_from is not None or chosen.modified_to is not None:
        span = models.Range(gte=chosen.modified_from, lte=chosen.modified_to)
        must.append(models.FieldCondition(key=DATE_FIELD, range=span))
    return models.Filter(must=must)
