"""Citation checking: which numbered sources an answer cites, and whether they support it (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_LEADING_MARKERS = re.compile(r"^((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)\s*")


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences; markers written after a sentence's full stop stay with that sentence."""
    sentences: list[str] = []
    for part in _SENTENCE_END.split(answer):
        part = part.strip()
        if not part:
            continue
        if sentences and (leading := _LEADING_MARKERS.match(part)):
            sentences[-1] += " " + leading.group(1).strip()
            part = part[leading.end() :]
        if part:
            sentences.append(part)
    return sentences


def support(sentence: str, source_text: str, *, asked: frozenset[str] = frozenset()) -> float:
    """Share of ``sentence``'s content words (markers aside) that ``source_text`` holds too.

    Words of the question (``asked``, as content words) are left out when the sentence has others:
    what a source must support is what the answer adds. A small model asked about something the
    source lacks restates the question, whose topic words the source has, around an invented
    fact ("The RTX 4090 idles at 35 degrees"); counted whole, that sentence looks supported. A
    sentence made only of the question's words is judged on all of them.
    """
    words = content_words(_MARKER.sub(" ", sentence))
    if not words:
        return 1.0
    added = words - asked
    if added:
        words = added
    return len(words & content_words(source_text)) / len(words)


@dataclass(frozen=True, slots=True)
class CitationCheck:
    """The answer's citations split by whether their sources support the sentences citing them.

    ``invalid`` counts markers naming no provided source (e.g. [7] with five sources).
    """

    supported: list[Citation]
    unsupported: list[Citation]
    invalid: int = 0

    def verdict(self) -> str:
        cited = len(self.supported) + len(self.unsupported)
        parts = [f"{len(self.supported)} of {cited} citation(s) supported"]
        if self.invalid:
            parts.append(f"{self.invalid} marker(s) naming no source")
        return "; ".join(parts)


def check_citations(
    answer: str, sources: Sequence[SearchHit], *, min_support: float, question: str = ""
) -> CitationCheck:
    """Which sources the answer cites, each checked against the sentences that cite it.

    A sentence's [n] marker is supported when at least ``min_support`` of the sentence's content
    words (those the ``question`` lacks, when it has any: see :func:`support`) occur in source n
    (an answer of several sentences may cite one source for some facts
    and another for others, so each sentence is checked on its own). A source cited by several
    sentences is supported when any of them is. An answer with no markers at all (small models
    often write none) cites, for each sentence, the source that supports it best, when one
    supports it at ``min_support``; such an answer has no unsupported citations by construction.
    """
    sentences = answer_sentences(answer)
    asked = frozenset(content_words(question))
    cited: dict[int, bool] = {}
    invalid = 0
    for sentence in sentences:
        for match in _MARKER.finditer(sentence):
            for part in re.split(r"[,;]", match.group(1)):
                n = int(part)
                if not 1 <= n <= len(sources):
                    invalid += 1
                    continue
                supported = support(sentence, sources[n - 1].text, asked=asked) >= min_support
                cited[n] = cited.get(n, False) or supported
    if not cited and not invalid:
        for sentence in sentences:
            shares = [(support(sentence, hit.text, asked=asked), -n) for n, hit in enumerate(sources, 1)]
            if shares and content_words(sentence):
                share, negative_n = max(shares)
                if share >= min_support:
                    cited.setdefault(-negative_n, True)
    return CitationCheck(
        supported=[Citation.from_hit(n, sources[n - 1]) for n, ok in cited.items() if ok],
        unsupported=[Citation.from_hit(n, sources[n - 1]) for n, ok in cited.items() if not ok],
        invalid=invalid,
    )
