"""Synthetic eval cases: question and answer pairs the LLM writes from a corpus's chunks, each
recording its source chunk and document as the reference."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from core.db.models import CorpusRow, DocumentRow
from core.errors import InvalidInputError
from core.resources import Resources
from core.types import Chunk
from evals.suite import EvalCase

_PROMPT = (
    "Write one question that the passage below answers, and its short answer, in exactly this form:\n"
    "Question: ...\nAnswer: ...\n\nPassage:\n{text}"
)
_PAIR = re.compile(r"Question:\s*(?P<q>.+?)\s*\n+\s*Answer:\s*(?P<a>.+)", re.IGNORECASE | re.DOTALL)
# Chunks shorter than this rarely hold a fact worth a question.
_MIN_CHARS = 200


def parse_pair(text: str) -> tuple[str, str] | None:
    """The question and answer in an LLM's reply, or None when it is not in the asked form."""
    match = _PAIR.search(text)
    if match is None:
        return None
    question = " ".join(match["q"].split())
    answer = " ".join(match["a"].strip().split("\n\n")[0].split())
    if len(question) < 8 or not question.endswith("?") or not answer:
        return None
    return question, answer


@dataclass(slots=True)
class Generated:
    cases: list[EvalCase]
    skipped: int
    reasons: dict[str, int] = field(default_factory=dict)


async def sample_chunks(resources: Resources, corpus: str, n: int, *, seed: int = 0) -> list[Chunk]:
    """Up to ``n`` chunks of ``corpus``, one per document while documents last, picked by ``seed``."""
    async with resources.sessions() as session:
        row = await session.scalar(select(CorpusRow).where(CorpusRow.name == corpus))
        if row is None or row.collection is None:
            raise InvalidInputError(f"no indexed corpus named {corpus!r}")
        documents = list(
            (await session.execute(select(DocumentRow.id).where(DocumentRow.corpus_id == row.id))).scalars()
        )
        collection = row.collection
    rng = random.Random(seed)
    rng.shuffle(documents)
    picked: list[Chunk] = []
    pools: list[list[Chunk]] = []
    for document_id in documents[: max(n, 1) * 2]:
        chunks = [
            c
            for c in await resources.store.chunks(collection, document_id=document_id)
            if len(c.text) >= _MIN_CHARS
        ]
        rng.shuffle(chunks)
        if chunks:
            pools.append(chunks)
    # Round robin over documents, so every document gives a chunk before any gives two.
    while len(picked) < n and any(pools):
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(pool.pop())
    return picked


async def generate_cases(
    resources: Resources,
    corpus: str,
    n: int,
    *,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
) -> Generated:
    """Ask the LLM for one question and answer per sampled chunk; replies not in form are skipped."""
    cases: list[EvalCase] = []
    reasons: dict[str, int] = {}
    for chunk in await sample_chunks(resources, corpus, n, seed=seed):
        completion = await resources.llm.complete(
            [{"role": "user", "content": _PROMPT.format(text=chunk.text[:2000])}], max_tokens=160
        )
        pair = parse_pair(completion.text)
        if progress:
            progress()
        if pair is None:
            reasons["reply not in the Question/Answer form"] = (
                reasons.get("reply not in the Question/Answer form", 0) + 1
            )
            continue
        question, answer = pair
        cases.append(
            EvalCase(
                question=question,
                reference_answer=answer,
                reference_documents=[chunk.source],
                reference_contexts=[chunk.text],
                tags=["generated"],
            )
        )
    return Generated(cases=cases, skipped=sum(reasons.values()), reasons=reasons)
