"""Citation markers and content words: what an answer cites, and the words a check compares (pure)."""

from __future__ import annotations

import re

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
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


def marker_numbers(text: str) -> list[int]:
    """Every number its [n], [n, m] or [n][m] markers name, in order, repeats and unknowns included."""
    return [int(part) for match in MARKER.finditer(text) for part in re.split(r"[,;]", match.group(1))]


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers cited as [n], [n, m] or [n][m], in first-cited order, within 1..n_sources."""
    seen: list[int] = []
    for n in marker_numbers(answer):
        if 1 <= n <= n_sources and n not in seen:
            seen.append(n)
    return seen


def is_stopword(word: str) -> bool:
    return word in _STOPWORDS


def stem(word: str) -> str:
    """A crude plural/verb-form folding, so 'widgets' meets 'widget' and 'cleaned' meets 'clean'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}
