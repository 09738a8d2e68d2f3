"""Rerankers: score (query, passage) pairs so the fused candidates can be put in a better order.

One interface, two backends chosen by ``retrieval.reranker``: a sentence-transformers
``CrossEncoder`` loaded offline from a local folder (run in a thread), or the rerank API that
vLLM serves for cross-encoder models (``POST {url}/v1/rerank``). ``none`` opens nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import httpx

from core.errors import ConfigurationError
from core.settings import RetrievalSettings


class Reranker(ABC):
    """Relevance of each text to a query (higher is better), in the texts' order."""

    name: str

    @abstractmethod
    async def rerank(self, query: str, texts: list[str]) -> list[float]: ...

    async def close(self) -> None:  # noqa: B027 - most rerankers hold nothing to release
        """Release what the reranker holds (an HTTP client)."""


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local folder; never downloads."""

    def __init__(self, path: str) -> None:
        from sentence_transformers import CrossEncoder

        try:
            self._model: Any = CrossEncoder(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot load the cross-encoder at {path!r} (LORE_RETRIEVAL__RERANKER_MODEL): {exc}"
            ) from None
        self.name = f"cross-encoder:{path}"

    async def rerank(self, query: str, texts: list[str]) -> list[float]:
        import asyncio

        return await asyncio.to_thread(self._scores, query, texts)

    def _scores(self, query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in self._model.predict([(query, t) for t in texts])]


class EndpointReranker(Reranker):
    """vLLM's rerank API: model, query and documents in; results of index and relevance_score out."""

    def __init__(self, url: str, model: str, *, api_key: str | None, timeout_s: float) -> None:
        base = url.rstrip("/")
        self._url = base + "/rerank" if base.endswith("/v1") else base + "/v1/rerank"
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s)
        self.name = f"endpoint:{model}"

    async def rerank(self, query: str, texts: list[str]) -> list[float]:
        response = await self._client.post(
            self._url, json={"model": self._model, "query": query, "documents": texts}
        )
        response.raise_for_status()
        scores = [0.0] * len(texts)
        seen = set()
        for result in response.json()["results"]:
            index = int(result["index"])
            scores[index] = float(result["relevance_score"])
            seen.add(index)
        if len(seen) != len(texts):
            raise ValueError(f"the reranker scored {len(seen)} of {len(texts)} documents")
        return scores

    async def close(self) -> None:
        await self._client.aclose()


def open_reranker(settings: RetrievalSettings) -> Reranker | None:
    """The reranker ``retrieval.reranker`` names, or None for ``none``."""
    if settings.reranker == "none":
        return None
    if not settings.reranker_model:
        raise ConfigurationError(
            f"retrieval.reranker {settings.reranker} needs LORE_RETRIEVAL__RERANKER_MODEL"
        )
    if settings.reranker == "cross-encoder":
        return CrossEncoderReranker(settings.reranker_model)
    if not settings.reranker_url:
        raise ConfigurationError("retrieval.reranker endpoint needs LORE_RETRIEVAL__RERANKER_URL")
    key = settings.reranker_api_key.get_secret_value() if settings.reranker_api_key else None
    # The HTTP client waits a little longer than the stage's own deadline (rerank_hits), so that a
    # slow endpoint is always reported as the stage's timeout, not as a read timeout of the client.
    return EndpointReranker(
        settings.reranker_url,
        settings.reranker_model,
        api_key=key,
        timeout_s=settings.reranker_timeout_s + 1.0,
    )
