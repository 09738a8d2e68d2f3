"""Extractive answers: the sources' own sentences that best answer a question, cited (pure).

The caller embeds the question and the candidate sentences (one batch) and passes the vectors,
so this module stays free of I/O and costs no model time. Sentences are ranked by cosine to the
question plus the share of the question's content words they hold, picked by MMR so they do not
repeat each other, and delivered in source order within a character budget, each with its [n].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.citations import MARKER, content_words
from retrieval.verification import split_sentences


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sentence of source ``source`` (numbered from 1), the ``position``-th in that source."""

    source: int
    position: int
    text: str


@dataclass(frozen=True, slots=True)
class Extract:
    """The composed answer and the sentences it is made of, in the order delivered."""

    answer: str
    chosen: tuple[Candidate, ...]


def candidates(sources: Sequence[str], *, min_words: int = 3) -> list[Candidate]:
    """The prose sentences of each source (markers removed, headings and short ones skipped)."""
    found: list[Candidate] = []
    for n, text in enumerate(sources, 1):
        for position, sentence in enumerate(split_sentences(text)):
            body = " ".join(MARKER.sub(" ", sentence.text).split())
            if sentence.kind != "prose" or body.startswith("#") or len(body.split()) < min_words:
                continue
            found.append(Candidate(n, position, body))
    return found


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def extract_answer(
    question: str,
    query: Sequence[float],
    found: Sequence[Candidate],
    vectors: Sequence[Sequence[float]],
    *,
    max_chars: int = 600,
    term_weight: float = 0.5,
    diversity: float = 0.3,
    max_similar: float = 0.9,
) -> Extract:
    """Pick sentences by MMR over cosine plus ``term_weight`` x question-word share, within ``max_chars``.

    A sentence whose cosine to one already picked reaches ``max_similar`` is a near-duplicate and
    is left out whatever room is left: MMR alone only orders it later.
    """
    if len(found) != len(vectors):
        raise ValueError(f"{len(found)} candidates but {len(vectors)} vectors")
    asked = content_words(question)
    relevance = [
        _cosine(query, v) + term_weight * (len(asked & content_words(c.text)) / len(asked) if asked else 0.0)
        for c, v in zip(found, vectors, strict=True)
    ]
    chosen: list[int] = []
    used = 0
    left = set(range(len(found)))
    while left:

        def score(i: int) -> float:
            similar = max((_cosine(vectors[i], vectors[j]) for j in chosen), default=0.0)
            return (1 - diversity) * relevance[i] - diversity * similar

        best = max(sorted(left), key=score)
        left.discard(best)
        size = len(found[best].text) + 5
        duplicate = any(_cosine(vectors[best], vectors[j]) >= max_similar for j in chosen)
        if duplicate or (chosen and used + size > max_chars):
            continue
        chosen.append(best)
        used += size
    picked = sorted((found[i] for i in chosen), key=lambda c: (c.source, c.position))
    return Extract(" ".join(f"{c.text} [{c.source}]" for c in picked), tuple(picked))
