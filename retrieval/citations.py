"""Citation mapping: which numbered sources an answer cites (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.types import Citation, SearchHit

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers cited as [n], [n, m] or [n][m], in first-cited order, within 1..n_sources."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            if 1 <= n <= n_sources and n not in seen:
                seen.append(n)
    return seen


def _stem(word: str) -> str:
    """A crude plural/verb-form folding, so 'widgets' meets 'widget' and 'cleaned' meets 'clean'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def attribute_by_overlap(answer: str, sources: Sequence[SearchHit], *, min_share: float = 0.3) -> list[int]:
    """Sources (1-based) whose text holds at least ``min_share`` of the answer's content words.

    Used when a small model answers from the sources without writing [n] markers. The best
    source comes first.
    """
    words = content_words(_MARKER.sub(" ", answer))
    if not words:
        return []
    scored = []
    for n, hit in enumerate(sources, start=1):
        share = len(words & content_words(hit.text)) / len(words)
        if share >= min_share:
            scored.append((share, -n, n))
    return [n for _, _, n in sorted(scored, reverse=True)]


def map_citations(answer: str, sources: Sequence[SearchHit]) -> list[Citation]:
    """Citations for ``answer``: its valid [n] markers, else the sources its words come from."""
    numbers = cited_numbers(answer, len(sources)) or attribute_by_overlap(answer, sources)
    return [
        Citation(
            n=n,
            document_id=sources[n - 1].document_id,
            title=sources[n - 1].title,
            source=sources[n - 1].source,
            page=sources[n - 1].page,
            text=sources[n - 1].text,
        )
        for n in numbers
    ]
