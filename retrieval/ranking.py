"""Ranking of search hits across collections: merging by score, reranking and collapsing repeats."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence

from core.components.reranker import Reranker
from core.types import SearchHit

# Two chunks of one document whose word trigrams overlap this much (share of the smaller one's)
# say the same thing: e.g. a page repeated in a PDF, or a boilerplate block.
_NEAR_DUPLICATE_OVERLAP = 0.8
_WORD = re.compile(r"\w+")


def merge_hits(rankings: Sequence[Sequence[SearchHit]], k: int) -> list[SearchHit]:
    """The ``k`` best hits of several collections' rankings, by score; equal scores by chunk ID.

    RRF gives many chunks the same score (the same ranks in both lists), and the store returns
    tied chunks in no fixed order: breaking ties by ID makes a search's results repeatable.
    """
    merged = [hit for ranking in rankings for hit in ranking]
    return sorted(merged, key=lambda hit: (-hit.score, hit.chunk_id))[:k]


def normalised_words(text: str) -> tuple[str, ...]:
    """The words of ``text``, lower-cased, without punctuation or spacing."""
    return tuple(_WORD.findall(text.lower()))


def _trigrams(words: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    return frozenset(words[i : i + 3] for i in range(max(1, len(words) - 2)))


def overlap(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """Share of the smaller set's trigrams that the other has too (1.0: one contains the other)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def diversify(hits: Sequence[SearchHit], *, k: int, max_per_document: int) -> list[SearchHit]:
    """The first ``k`` of ``hits`` (best first) that repeat nothing already taken.

    A hit is dropped when an earlier one of its corpus has the same normalised text (in any
    document), when an earlier one of its document overlaps it heavily, or when its document has
    ``max_per_document`` hits already. A copy in another corpus is kept: corpora are the sources a
    caller chose to search, and each copy may be a different version of the text.
    """
    taken: list[SearchHit] = []
    texts: set[tuple[str, tuple[str, ...]]] = set()
    # By corpus and document: corpora are separate collections, each its own documents.
    shingles: dict[tuple[str, str], list[frozenset[tuple[str, ...]]]] = {}
    for hit in hits:
        if len(taken) == k:
            break
        words = normalised_words(hit.text)
        if (hit.corpus, words) in texts:
            continue
        earlier = shingles.setdefault((hit.corpus, hit.document_id), [])
        if len(earlier) >= max_per_document:
            continue
        grams = _trigrams(words)
        if any(overlap(grams, other) >= _NEAR_DUPLICATE_OVERLAP for other in earlier):
            continue
        texts.add((hit.corpus, words))
        earlier.append(grams)
        taken.append(hit)
    return taken


async def rerank_hits(
    reranker: Reranker, query: str, hits: Sequence[SearchHit], *, candidates: int, timeout_s: float
) -> tuple[list[SearchHit], str]:
    """The first ``candidates`` hits in the reranker's order, the rest after them, and a verdict.

    A reranked hit's score is the reranker's. When the reranker fails or takes longer than
    ``timeout_s``, the hits keep their fused order and scores, and the verdict says why.
    """
    head, tail = list(hits[:candidates]), list(hits[candidates:])
    try:
        scores = await asyncio.wait_for(reranker.rerank(query, [h.text for h in head]), timeout_s)
    except TimeoutError:
        return list(hits), f"fallback: fused order (no answer within {timeout_s} s)"
    except Exception as exc:  # any backend failure: the fused order is still a good answer
        return list(hits), f"fallback: fused order ({type(exc).__name__})"
    ranked = sorted(
        (dataclasses.replace(h, score=s) for h, s in zip(head, scores, strict=True)),
        key=lambda h: (-h.score, h.chunk_id),
    )
    return ranked + tail, f"reranked {len(head)} candidate(s) with {reranker.name}"
