"""Extractive answers: the sources' own sentences that best answer a question, cited (pure).

The caller embeds the question and the candidate sentences (one batch) and passes the vectors,
so this module stays free of I/O and costs no model time. Sentences are ranked by cosine to the
question plus the share of the question's content words they hold, picked by MMR so they do not
repeat each other, and delivered in source order within a character budget, each with its [n].
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from core import tables
from retrieval.answer_types import AnswerType, holds
from retrieval.citations import MARKER, content_words
from retrieval.verification import split_sentences


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sentence of source ``source`` (numbered from 1), the ``position``-th in that source."""

    source: int
    position: int
    text: str
    # The code block a sentence ending in a colon introduces ("You ingest with one command:").
    follow: str = ""
    # The heading over the sentence in its source, "#" marks removed ("1.4.0", "Installation").
    heading: str = ""

    @property
    def scored(self) -> str:
        """What the question is compared with: the sentence and the code it brings, fences left out."""
        code = [line for line in self.follow.split("\n") if not line.lstrip().startswith(("```", "~~~"))]
        return " ".join([self.text, *code]).strip()


@dataclass(frozen=True, slots=True)
class Extract:
    """The composed answer and the sentences it is made of, in the order delivered.

    ``support`` is the best sentence's relevance (cosine plus weighted question-word share) and
    ``coverage`` the share of the question's content words the chosen sentences hold: how well the
    sources answer the question at all, the signal that refuses an extract (answer.min_extract_support).
    """

    answer: str
    chosen: tuple[Candidate, ...]
    support: float = 0.0
    coverage: float = 0.0


# A line that starts a Markdown block of its own (list item, heading, table row, fence, quote).
_BLOCK_LINE = re.compile(r"\s*(?:[-*+]\s|\d+[.)]\s|#|\||```|~~~|>)")
# A whole sentence ends in terminal punctuation (perhaps inside quotes, brackets or emphasis).
_ENDS = re.compile(r"[.!?:;][\"'\u201d\u2019)\]`*_]*$")
_LIST_ITEM = re.compile(r"(?:[-*+]|\d+[.)])\s+")
# "How do I ...", "How can we ...", "How to ...": a question answered by a procedure.
_HOW = re.compile(r"\s*how\s+(?:do|does|can|could|should|would|to)\b", re.IGNORECASE)
_MARKERS = re.compile(r"\s*" + MARKER.pattern)
# Longest line without an end of sentence that is taken for a heading.
_MAX_HEADING_WORDS = 12


def _unwrap(text: str) -> str:
    """``text`` with each prose paragraph on one line, so that a sentence is not cut at a line break."""
    lines: list[str] = []
    fenced = False
    for line in text.split("\n"):
        fence = line.lstrip().startswith(("```", "~~~"))
        previous = lines[-1] if lines else ""
        joins = (
            not fenced
            and not fence
            and line.strip()
            and previous.strip()
            and not _BLOCK_LINE.match(line)
            and not _BLOCK_LINE.match(previous)
        )
        if joins:
            lines[-1] = f"{previous.rstrip()} {line.strip()}"
        else:
            lines.append(line)
        fenced ^= fence
    return "\n".join(lines)


def candidates(sources: Sequence[str], *, min_words: int = 3) -> list[Candidate]:
    """The whole prose sentences of each source (markers removed; headings, fragments and short ones
    skipped); one that ends in a colon brings the code block it introduces, or is skipped."""
    found: list[Candidate] = []
    for n, text in enumerate(sources, 1):
        units = split_sentences(_unwrap(text))
        heading = ""
        for position, sentence in enumerate(units):
            body = " ".join(_MARKERS.sub("", sentence.text).split())
            if sentence.kind == "prose" and body.startswith("#"):
                heading = body.lstrip("#").strip()
                continue
            if sentence.kind != "prose" or len(body.split()) < min_words:
                continue
            if item := _LIST_ITEM.match(body):
                # A list item stands alone only as a whole sentence of its own.
                body = body[item.end() :]
                if not body[:1].isupper() or not body.endswith((".", "!", "?")):
                    continue
            if not _ENDS.search(body):
                # A short line without an end is a heading in text without Markdown ("Wednesday,
                # April 3 - v0.2.7 Update" over a changelog's items, in a crawled page).
                if len(body.split()) <= _MAX_HEADING_WORDS:
                    heading = body
                continue
            follow = ""
            if body.endswith(":"):
                after = units[position + 1] if position + 1 < len(units) else None
                if after is None or after.kind != "code":
                    continue
                follow = after.text.strip()
            found.append(Candidate(n, position, body, follow, heading))
        found.extend(_table_rows(n, text))
    return found


# Table rows come after a source's sentences in its order.
_ROW_POSITION = 100_000


def _table_rows(source: int, text: str) -> list[Candidate]:
    """Each row of the Markdown tables in ``text`` that has a label and figures, as one sentence
    that states them with their column headings ("Total net sales: Three Months Ended June 25,
    2022 $82,959; ..."), so that an extract can quote a table: every word and figure of it is in
    the row and the header of the cited passage. The caption (the lines above) is its heading."""
    lines = text.split("\n")
    found: list[Candidate] = []
    for i, line in enumerate(lines):
        if i == 0 or not tables.is_rule(line) or not tables.is_row(lines[i - 1]):
            continue
        header = tables.cells(lines[i - 1])
        caption = " ".join(ln.strip() for ln in lines[: i - 1] if ln.strip() and not tables.is_row(ln))
        for j in range(i + 1, len(lines)):
            if not tables.is_row(lines[j]):
                break
            label, *values = tables.cells(lines[j])
            stated = [
                f"{head} {value}" if head else value
                for head, value in zip(header[1:], values, strict=False)
                if value
            ]
            label = label.rstrip(":").strip()
            if label and stated:
                found.append(
                    Candidate(source, _ROW_POSITION + j, f"{label}: {'; '.join(stated)}.", heading=caption)
                )
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
    min_relative: float = 0.6,
    procedure_weight: float = 0.25,
    required: Callable[[Candidate], bool] | None = None,
) -> Extract:
    """Pick sentences by MMR over cosine plus ``term_weight`` x question-word share, within ``max_chars``.

    A sentence whose cosine to one already picked reaches ``max_similar`` is a near-duplicate and
    is left out whatever room is left: MMR alone only orders it later. So is one whose relevance is
    below ``min_relative`` times the best's: room left is not a reason to add what the question did
    not ask. A question asking how to do something is answered by a procedure: a sentence that
    brings the code it introduces gains ``procedure_weight``.

    With ``required`` (the question asks for a number, a date...: :mod:`retrieval.answer_types`),
    only the sentences it accepts are picked, still against the best of all sentences: when none of
    them is relevant enough, the extract is empty, and the documents do not answer the question.
    """
    if len(found) != len(vectors):
        raise ValueError(f"{len(found)} candidates but {len(vectors)} vectors")
    asked = content_words(question)
    how = _HOW.match(question) is not None
    relevance = [
        _cosine(query, v)
        + term_weight * (len(asked & content_words(c.scored)) / len(asked) if asked else 0.0)
        + (procedure_weight if how and c.follow else 0.0)
        for c, v in zip(found, vectors, strict=True)
    ]
    chosen: list[int] = []
    used = 0
    floor = min_relative * max(relevance, default=0.0)
    left = {
        i for i in range(len(found)) if relevance[i] >= floor and (required is None or required(found[i]))
    }
    while left:

        def score(i: int) -> float:
            similar = max((_cosine(vectors[i], vectors[j]) for j in chosen), default=0.0)
            return (1 - diversity) * relevance[i] - diversity * similar

        best = max(sorted(left), key=score)
        left.discard(best)
        size = len(found[best].text) + len(found[best].follow) + 5
        duplicate = any(_cosine(vectors[best], vectors[j]) >= max_similar for j in chosen)
        if duplicate or (chosen and used + size > max_chars):
            continue
        chosen.append(best)
        used += size
    picked = sorted((found[i] for i in chosen), key=lambda c: (c.source, c.position))
    held = set().union(*(content_words(c.text) for c in picked)) if picked else set()
    coverage = len(asked & held) / len(asked) if asked else 1.0
    support = max((relevance[i] for i in chosen), default=0.0)
    return Extract(_compose(picked), tuple(picked), support=round(support, 4), coverage=round(coverage, 4))


def _compose(picked: Sequence[Candidate]) -> str:
    """The chosen sentences as one answer: each with its [n], a code block it introduces on its own lines."""
    text = ""
    for c in picked:
        sentence = f"{c.text} [{c.source}]"
        text = f"{text} {sentence}" if text and not text.endswith("\n") else text + sentence
        if c.follow:
            text += f"\n\n{c.follow}\n\n"
    return text.strip()


def with_typed_heading(candidate: Candidate, kind: AnswerType) -> Candidate:
    """``candidate`` led by its heading when only the heading holds the kind of answer asked for:
    "When did mushroom trees stop dropping wood?" is answered by "1.4.0: Mushroom trees no longer
    drop wood." under the heading "1.4.0" (the heading is in the cited passage too)."""
    if not candidate.heading or holds(f"{candidate.text}\n{candidate.follow}", kind):
        return candidate
    if not holds(candidate.heading, kind):
        return candidate
    return replace(candidate, text=f"{candidate.heading}: {candidate.text}")
