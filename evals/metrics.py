"""Retrieval metrics over ranked document lists (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def first_relevant_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant item, or None."""
    for rank, item in enumerate(ranked, start=1):
        if item in relevant:
            return rank
    return None


def hit_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1.0 when a relevant item is in the top ``k``, else 0.0."""
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str]) -> float:
    """1/rank of the first relevant item, 0.0 when none is retrieved."""
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 / rank if rank is not None else 0.0


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Items in first-seen order: several chunks of one document count once, at its best rank."""
    seen: dict[str, None] = {}
    for item in ranked:
        seen.setdefault(item, None)
    return list(seen)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
