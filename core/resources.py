"""Resource wiring: one async context manager opens every adapter the settings choose.

The API lifespan, the CLI and the eval runner all use :func:`open_resources`, so models load
once per process and every resource is closed in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.components.cache import Cache, cache_outage, open_cache
from core.components.embedding import Embedder, canonical_model_name
from core.components.llm import LLM, open_llm
from core.components.outage import ErrorHook
from core.components.queue import JobQueue
from core.components.reranker import Reranker, open_reranker
from core.components.semantic_cache import SemanticIndex, open_semantic_index
from core.components.vectorstore import Bm25Encoder, VectorStore, open_vector_store
from core.db.engine import open_engine, session_factory
from core.errors import BackendError
from core.indexing import ActiveSearches
from core.settings import EmbeddingSettings, Settings


@dataclass(slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    embedder: Embedder
    sparse: Bm25Encoder
    store: VectorStore
    cache: Cache
    _llm: LLM | None = None
    # The ingestion job queue; None: jobs run in the process that starts them.
    queue: JobQueue | None = None
    # None when the semantic cache is switched off.
    semantic: SemanticIndex | None = None
    searches: ActiveSearches = field(default_factory=ActiveSearches)
    _embedders: dict[str, Embedder] = field(default_factory=dict)
    _embedders_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reranker: Reranker | None = None
    _reranker_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reranker(self) -> Reranker | None:
        """The reranker ``retrieval.reranker`` names, opened on first use (None: reranking is off)."""
        if self.settings.retrieval.reranker == "none":
            return None
        async with self._reranker_lock:
            if self._reranker is None:
                self._reranker = await asyncio.to_thread(open_reranker, self.settings.retrieval)
            return self._reranker

    @property
    def llm(self) -> LLM:
        """The LLM, loaded on first use when the resources were opened without it."""
        if self._llm is None:
            self._llm = open_llm(self.settings.llm)
        return self._llm

    async def embedder_for(self, model: str | None) -> Embedder:
        """The embedder of ``model`` (None: the default): loaded offline on first use, then kept.

        Raises ConfigurationError when the model cannot be loaded.
        """
        name = canonical_model_name(model) if model is not None else self.embedder.model_name
        if name == self.embedder.model_name:
            return self.embedder
        async with self._embedders_lock:
            if name not in self._embedders:
                settings = EmbeddingSettings.model_validate(
                    self.settings.embedding.model_dump() | {"model": name}
                )
                self._embedders[name] = await asyncio.to_thread(Embedder, settings)
            return self._embedders[name]


@asynccontextmanager
async def open_resources(
    settings: Settings,
    *,
    with_llm: bool = True,
    migrate_sqlite: bool = False,
    on_cache_error: ErrorHook | None = None,
) -> AsyncIterator[Resources]:
    """Open database, embedder, sparse encoder, vector store, cache, job queue and (optionally) the LLM.

    ``embedder`` is the settings' model; corpora embedded with another get theirs from
    :meth:`Resources.embedder_for`. Collections are made per corpus at its first ingest.

    ``migrate_sqlite`` applies pending migrations to an embedded SQLite database (the CLI does
    this for the single-user default); other databases must be migrated with ``lore db upgrade``.
    A Redis cache that fails is no cache; each failed call goes to ``on_cache_error`` (a metric).
    """
    async with AsyncExitStack() as stack:
        engine = await open_engine(settings, migrate_sqlite=migrate_sqlite)
        stack.push_async_callback(engine.dispose)

        embedder = Embedder(settings.embedding)
        store = await open_vector_store(settings)
        stack.push_async_callback(store.close)

        # One Redis behind both: one outage, logged once.
        outage = cache_outage(settings.cache, on_error=on_cache_error)
        cache = open_cache(settings.cache, outage=outage)
        stack.push_async_callback(cache.close)
        semantic = open_semantic_index(settings.cache, outage=outage)
        if semantic is not None:
            stack.push_async_callback(semantic.close)

        queue = await _open_queue(settings) if settings.queue.redis_url else None
        if queue is not None:
            stack.push_async_callback(queue.close)

        resources = Resources(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            embedder=embedder,
            sparse=Bm25Encoder(),
            store=store,
            cache=cache,
            _llm=open_llm(settings.llm) if with_llm else None,
            semantic=semantic,
            queue=queue,
        )

        async def _close_llm() -> None:
            if resources._llm is not None:
                await resources._llm.close()

        stack.push_async_callback(_close_llm)

        async def _close_reranker() -> None:
            if resources._reranker is not None:
                await resources._reranker.close()

        stack.push_async_callback(_close_reranker)
        yield resources


async def _open_queue(settings: Settings) -> JobQueue:
    """The job queue; a Redis that does not answer is one BackendError naming the setting."""
    assert settings.queue.redis_url is not None
    try:
        return await JobQueue.open(settings.queue)
    except (OSError, RedisError) as exc:
        where = urlsplit(settings.queue.redis_url)
        raise BackendError(
            f"cannot reach the job queue's Redis at {where.hostname}:{where.port or 6379} "
            f"(LORE_QUEUE__REDIS_URL): {exc}; start Redis "
            "there, or unset LORE_QUEUE__REDIS_URL to run ingestion jobs in the process that starts them"
        ) from None
