"""How a corpus is indexed: its collections (one per generation), its config, and who is reading it.

Each corpus has its own vector collection, ``lore_<slug>_<hash8>_g<N>``; a re-index builds
generation N+1 beside N and then switches the corpus row's pointer to it. The names are valid
Qdrant collection names and folder names alike, and two corpora never share one (the hash is of
the exact name).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.components.embedding import canonical_model_name
from core.db.models import CorpusRow
from core.settings import Settings

_SLUG_CHARS = re.compile(r"[^a-z0-9]")
_SLUG_MAX = 40


def collection_alias(corpus: str) -> str:
    """The name that always means the corpus's serving generation (a Qdrant alias on a server)."""
    slug = _SLUG_CHARS.sub("_", corpus.lower())[:_SLUG_MAX]
    return f"lore_{slug}_{hashlib.sha256(corpus.encode()).hexdigest()[:8]}"


def collection_name(corpus: str, generation: int) -> str:
    """The collection holding generation ``generation`` of ``corpus``'s chunks."""
    if generation < 1:
        raise ValueError("generations count from 1")
    return f"{collection_alias(corpus)}_g{generation}"


def corpus_collections(names: Iterable[str], corpus: str) -> list[str]:
    """The names among ``names`` that are generations of ``corpus``, in generation order."""
    pattern = re.compile(rf"{re.escape(collection_alias(corpus))}_g(\d+)")
    found = [(int(m.group(1)), name) for name in names if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """What a corpus's chunks are made with: the embedding model and the chunker's size and overlap."""

    model: str
    chunk_tokens: int
    chunk_overlap_tokens: int

    @classmethod
    def defaults(cls, settings: Settings) -> IndexConfig:
        """The settings' config, which a corpus takes when its first collection is made."""
        return cls(
            model=canonical_model_name(settings.embedding.model),
            chunk_tokens=settings.ingestion.chunk_tokens,
            chunk_overlap_tokens=settings.ingestion.chunk_overlap_tokens,
        )

    @classmethod
    def of(cls, corpus: CorpusRow, settings: Settings) -> IndexConfig:
        """The corpus's own config; the settings' defaults stand in until it has a collection."""
        default = cls.defaults(settings)
        return cls(
            model=corpus.embedding_model or default.model,
            chunk_tokens=corpus.chunk_tokens if corpus.chunk_tokens is not None else default.chunk_tokens,
            chunk_overlap_tokens=(
                corpus.chunk_overlap_tokens
                if corpus.chunk_overlap_tokens is not None
                else default.chunk_overlap_tokens
            ),
        )


class ActiveSearches:
    """The searches running in this process and the corpora each reads.

    A search registers before it reads a corpus's collection pointer, so once a switch has
    committed, waiting for the searches registered at that moment is enough: every later one
    reads the new pointer. Only then may the previous generation be dropped.
    """

    def __init__(self) -> None:
        # None: a search of every corpus (its corpora are resolved inside the block)
        self._running: dict[int, frozenset[str] | None] = {}
        self._tokens = itertools.count()

    @contextmanager
    def track(self, corpora: Iterable[str] | None) -> Iterator[None]:
        """Count a search of ``corpora`` (None: of any corpus) as running for the duration of the block."""
        token = next(self._tokens)
        self._running[token] = None if corpora is None else frozenset(corpora)
        try:
            yield
        finally:
            del self._running[token]

    def reading(self, corpus: str) -> int:
        """How many searches of ``corpus`` are running."""
        return sum(corpora is None or corpus in corpora for corpora in self._running.values())

    async def wait_for_current(self, corpus: str, *, timeout_s: float) -> bool:
        """Wait until the searches of ``corpus`` running now have finished; False if time ran out."""
        waiting = {token for token, corpora in self._running.items() if corpora is None or corpus in corpora}
        deadline = time.monotonic() + timeout_s
        while waiting & self._running.keys():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True
