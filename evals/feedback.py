"""Readers' feedback on answers as an eval dataset: each rated answer becomes a case.

A thumbs-down answer's question is replayed with the documents it cited as the references and the
reader's comment as the case's notes, so a fix can be shown to help; a thumbs-up answer also gives
its answer as the reference answer. The suite and cases are what ``POST /v1/evals/runs`` takes,
and ``lore eval feedback export`` writes them as a suite YAML beside its JSONL dataset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    """One answer a reader rated, with the question it answered."""

    message_id: str
    conversation_id: str
    corpus: str | None
    question: str
    answer: str
    rating: str  # up | down
    comment: str | None
    username: str
    created_at: datetime
    citations: Sequence[dict[str, Any]] = field(default_factory=tuple)


def _references(citations: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for citation in citations:
        source = citation.get("source")
        if isinstance(source, str) and source:
            seen.setdefault(source, None)
    return list(seen)


def feedback_cases(rated: Sequence[RatedAnswer]) -> list[dict[str, Any]]:
    """One case per rated question (its latest rating wins), newest first."""
    cases: dict[str, dict[str, Any]] = {}
    for answer in rated:
        key = answer.question.strip()
        if not key or key in cases:
            continue
        case: dict[str, Any] = {
            "question": key,
            "reference_documents": _references(answer.citations),
            "tags": ["feedback", f"feedback:{answer.rating}"],
            "notes": answer.comment or "",
        }
        if answer.rating == "up":
            case["reference_answer"] = answer.answer
        cases[key] = case
    return list(cases.values())


def feedback_suite(
    rated: Sequence[RatedAnswer], *, corpus: str | None = None, name: str = "feedback", k: int = 4
) -> dict[str, Any]:
    """The suite (without cases) over ``corpus``: by default the corpus most of the rated
    conversations asked; every feedback must then come from it or from no corpus in particular."""
    if not rated:
        raise InvalidInputError("there is no feedback to export (none matches)")
    if corpus is None:
        named = Counter(r.corpus for r in rated if r.corpus)
        if not named:
            raise InvalidInputError("the rated conversations name no corpus: say which corpus to run over")
        corpus = named.most_common(1)[0][0]
    ratings = Counter(r.rating for r in rated)
    return {
        "name": name,
        "description": (
            f"{len(rated)} rated answers ({ratings['down']} thumbs down, {ratings['up']} up) from "
            "Lore's readers, as cases: the cited documents are the references, the comment the notes."
        ),
        "dataset": f"{name}.jsonl",
        "corpus": corpus,
        "k": k,
        "mode": "answer",
    }


def of_corpus(rated: Sequence[RatedAnswer], corpus: str | None) -> list[RatedAnswer]:
    """The feedback from conversations on ``corpus`` or on no corpus in particular (None: all)."""
    if corpus is None:
        return list(rated)
    return [r for r in rated if r.corpus in (None, corpus)]
