"""Exact-repeat answer cache: keys and (de)serialisation (pure; the store is the Cache adapter).

A key covers everything the answer depends on: the normalised question, each searched corpus
with its version (bumped whenever its chunks change, so re-indexing invalidates), k, the retrieval
mode, the models and the prompt. Scope is part of the key: an answer is only ever served to a
query over exactly the same corpora.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.types import Answer, Citation, SearchHit

# Bump when the prompt or citation mapping changes, so answers made the old way are not served.
PROMPT_VERSION = "prompt-2"


def normalise_question(question: str) -> str:
    return " ".join(question.split()).casefold()


def answer_key(
    question: str,
    *,
    corpora: Mapping[str, int],
    k: int,
    mode: str,
    embedding_model: str,
    llm_model: str,
    generation: Mapping[str, object],
) -> str:
    """Cache key of an answer to ``question`` over ``corpora`` (name -> version)."""
    material = {
        "q": normalise_question(question),
        "corpora": sorted(corpora.items()),
        "k": k,
        "mode": mode,
        "embedding": embedding_model,
        "llm": llm_model,
        "generation": sorted(generation.items()),
        "prompt": PROMPT_VERSION,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return f"answer:{digest}"


def dump_answer(answer: Answer) -> bytes:
    payload = {
        "answer": answer.answer,
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "sources": [dataclasses.asdict(h) for h in answer.sources],
        "model": answer.model,
        "usage": answer.usage,
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def load_answer(raw: bytes) -> Answer:
    payload: dict[str, Any] = json.loads(raw)
    return Answer(
        answer=payload["answer"],
        citations=[Citation(**c) for c in payload["citations"]],
        sources=[SearchHit(**{**h, "headings": tuple(h.get("headings") or ())}) for h in payload["sources"]],
        model=payload["model"],
        usage=payload.get("usage") or {},
        cached=True,
    )
