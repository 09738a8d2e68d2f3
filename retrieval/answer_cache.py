"""Answer cache keys and (de)serialisation (pure; the stores are the Cache and SemanticIndex adapters).

A key covers everything the answer depends on: the normalised question, each searched corpus
with its version (bumped whenever its chunks change, so re-indexing invalidates), k, the retrieval
mode, the models and the prompt. Scope is part of the key: an answer is only ever served to a
query over exactly the same corpora. The semantic layer compares questions only within one
:func:`scope_key`, the same material without the question.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.types import Answer, Citation, Location, SearchHit, UnsupportedSentence

# Bump when the prompt, citation mapping or verification changes, so answers made the old way are not served.
PROMPT_VERSION = "prompt-3"


def normalise_question(question: str) -> str:
    return " ".join(question.split()).casefold()


def _scope_material(
    *,
    corpora: Mapping[str, int],
    k: int,
    mode: str,
    embedding_model: str,
    llm_model: str,
    generation: Mapping[str, object],
    filter: Mapping[str, object] | None = None,
) -> dict[str, object]:
    return {
        "corpora": sorted(corpora.items()),
        "filter": filter,
        "k": k,
        "mode": mode,
        "embedding": embedding_model,
        "llm": llm_model,
        "generation": sorted(generation.items()),
        "prompt": PROMPT_VERSION,
    }


def _digest(material: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def answer_key(
    question: str,
    *,
    corpora: Mapping[str, int],
    k: int,
    mode: str,
    embedding_model: str,
    llm_model: str,
    generation: Mapping[str, object],
    filter: Mapping[str, object] | None = None,
) -> str:
    """Cache key of an answer to ``question`` over ``corpora`` (name -> version)."""
    material = _scope_material(
        corpora=corpora,
        k=k,
        mode=mode,
        embedding_model=embedding_model,
        llm_model=llm_model,
        generation=generation,
        filter=filter,
    )
    return f"answer:{_digest({**material, 'q': normalise_question(question)})}"


def scope_key(
    *,
    corpora: Mapping[str, int],
    k: int,
    mode: str,
    embedding_model: str,
    llm_model: str,
    generation: Mapping[str, object],
    filter: Mapping[str, object] | None = None,
) -> str:
    """Semantic cache scope: everything an answer key covers except the question.

    Only questions under the same scope key are compared, so a semantic hit never crosses corpora,
    corpus versions, models or generation settings.
    """
    material = _scope_material(
        corpora=corpora,
        k=k,
        mode=mode,
        embedding_model=embedding_model,
        llm_model=llm_model,
        generation=generation,
        filter=filter,
    )
    return _digest(material)


def dump_answer(answer: Answer) -> bytes:
    payload = {
        "answer": answer.answer,
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "sources": [dataclasses.asdict(h) for h in answer.sources],
        "model": answer.model,
        "usage": answer.usage,
        "refused": answer.refused,
        "answer_kind": answer.answer_kind,
        "unsupported_citations": [dataclasses.asdict(c) for c in answer.unsupported_citations],
        "unsupported_sentences": [dataclasses.asdict(u) for u in answer.unsupported_sentences],
        # The verdicts on the answer itself (groundedness, retrieval confidence); a hit adds the
        # question's own checks, made afresh.
        "guardrails": answer.guardrails,
    }
    return json.dumps(payload, ensure_ascii=False).encode()


def load_answer(raw: bytes) -> Answer:
    payload: dict[str, Any] = json.loads(raw)
    return Answer(
        answer=payload["answer"],
        citations=[_citation(c) for c in payload["citations"]],
        sources=[
            SearchHit(
                **{
                    **h,
                    "headings": tuple(h.get("headings") or ()),
                    "location": Location.from_payload(h.get("location") or {}),
                }
            )
            for h in payload["sources"]
        ],
        model=payload["model"],
        usage=payload.get("usage") or {},
        refused=payload.get("refused", False),
        answer_kind=payload.get("answer_kind") or ("refusal" if payload.get("refused") else "generated"),
        unsupported_citations=[_citation(c) for c in payload.get("unsupported_citations") or ()],
        unsupported_sentences=[UnsupportedSentence(**u) for u in payload.get("unsupported_sentences") or ()],
        guardrails=payload.get("guardrails") or {},
        cached=True,
        cache_kind="exact",
    )


def _citation(stored: dict[str, Any]) -> Citation:
    return Citation(**{**stored, "location": Location.from_payload(stored.get("location") or {})})
