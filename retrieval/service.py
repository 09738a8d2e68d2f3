"""Answering: retrieve sources for a question, prompt the LLM, map its citations.

Services know nothing of HTTP; the API and the CLI both call these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from core.components.llm import Message
from core.db.models import CorpusRow
from core.errors import InvalidInputError, NotFoundError, OverloadedError
from core.resources import Resources
from core.types import Answer, AnswerKind, Citation, SearchFilter, SearchHit, SparseVector
from retrieval import answer_cache
from retrieval.answer_types import expected_type, holds
from retrieval.corpus_terms import never_mentioned_text, unmentioned
from retrieval.extractive import candidates, extract_answer, with_typed_heading
from retrieval.followup import standalone_question
from retrieval.guardrails import check_question, neutralise_sources
from retrieval.prompt import build_messages, fit_sources
from retrieval.ranking import diversify, merge_hits, rerank_hits
from retrieval.verification import Verdict, Verifier, sentences

# Characters of source text per prompt token is about 4 for English; keep a margin.
_CHARS_PER_TOKEN = 3
_PROMPT_OVERHEAD_TOKENS = 200
MAX_K = 50


@dataclass(slots=True)
class TokenEvent:
    """Verified text of the answer: whole sentences, with the spacing before them.

    ``final`` is False while a :class:`RefusalEvent` may still withdraw the text: for the sentences
    shown before the first one a source supports (one that needs no source, or one kept unverified).
    """

    text: str
    final: bool = True


@dataclass(slots=True)
class SentenceRemovedEvent:
    """A sentence of the draft no source supports, left out of the answer (never sent as a token)."""

    sentence: str
    reason: str


@dataclass(slots=True)
class CitationsEvent:
    citations: list[Citation]


@dataclass(slots=True)
class RefusalEvent:
    """The answer is a refusal after all: no sentence of the draft was supported by its sources.

    ``text`` replaces what was streamed so far.
    """

    text: str


@dataclass(slots=True)
class DoneEvent:
    """The end of the stream: the whole verified answer, as :func:`answer` returns it."""

    answer: Answer


StreamEvent = TokenEvent | SentenceRemovedEvent | CitationsEvent | RefusalEvent | DoneEvent


@dataclass(frozen=True, slots=True)
class Ask:
    """One question and its scope.

    ``allowed_corpora`` is the caller's access scope (None: unrestricted, as for the local CLI);
    a corpus outside it is reported as missing, so its existence does not leak. ``history`` holds
    the conversation's earlier turns, oldest first. ``max_tokens`` and ``temperature`` (None: the
    settings') and ``stop`` go to the LLM that drafts the answer.
    """

    question: str
    corpus: str | None = None
    k: int | None = None
    allowed_corpora: frozenset[str] | None = None
    history: tuple[Message, ...] = ()
    use_cache: bool = True
    filter: SearchFilter | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


@dataclass(frozen=True, slots=True)
class Target:
    """A corpus a query searches: its version, serving collection (None before its first ingest) and model."""

    corpus: str
    version: int
    collection: str | None
    model: str


async def _targets(
    resources: Resources, corpora: Sequence[str] | None, corpus: str | None = None
) -> list[Target]:
    query = select(CorpusRow).order_by(CorpusRow.name)
    if corpus is not None:
        query = query.where(CorpusRow.name == corpus)
    if corpora is not None:
        query = query.where(CorpusRow.name.in_(sorted(corpora)))
    default = resources.embedder.model_name
    async with resources.sessions() as session:
        rows = (await session.execute(query)).scalars().all()
    return [Target(r.name, r.version, r.collection, r.embedding_model or default) for r in rows]


async def resolve_corpora(
    resources: Resources, corpus: str | None, *, allowed: frozenset[str] | None = None
) -> dict[str, Target]:
    """Corpora a query searches, with their versions and models: the one named, or every one in scope.

    A named corpus must exist and be in ``allowed`` (when given); otherwise it is not found.
    """
    found = {
        t.corpus: t
        for t in await _targets(resources, sorted(allowed) if allowed is not None else None, corpus)
    }
    if corpus is not None and not found:
        raise NotFoundError(f"no corpus named {corpus!r}; ingest documents into it first")
    return found


def _check_question(resources: Resources, question: str, k: int | None) -> int:
    if not question.strip():
        raise InvalidInputError("the question is empty")
    limit = resources.settings.retrieval.max_question_chars
    if len(question) > limit:
        raise InvalidInputError(f"the question has {len(question)} characters; the limit is {limit}")
    k = k or resources.settings.retrieval.k
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}")
    return k


async def search(
    resources: Resources,
    question: str,
    *,
    corpora: Sequence[str],
    k: int,
    timings: dict[str, float],
    embedded: Mapping[str, list[float]] | None = None,
    filter: SearchFilter | None = None,
) -> list[SearchHit]:
    """Top ``k`` chunks for ``question`` within ``corpora``, by the configured retrieval mode.

    Only these corpora's collections are queried, each with the question embedded by its own
    model (once per distinct model; ``embedded`` gives vectors already made, by model name);
    their hits are merged by score, then near-duplicates are collapsed and each document keeps at
    most ``retrieval.max_chunks_per_document`` chunks.
    """
    # Registered before the collection pointers are read, so a re-index's switch waits for this
    # search before it drops the generation the search may be reading.
    with resources.searches.track(corpora):
        targets = await _targets(resources, corpora)
        return await search_targets(
            resources, question, targets=targets, k=k, timings=timings, embedded=embedded, filter=filter
        )


async def search_targets(
    resources: Resources,
    question: str,
    *,
    targets: Iterable[Target],
    k: int,
    timings: dict[str, float],
    embedded: Mapping[str, list[float]] | None = None,
    filter: SearchFilter | None = None,
    verdicts: dict[str, str] | None = None,
    explain: dict[str, SignalScores] | None = None,
) -> list[SearchHit]:
    """:func:`search` over corpora already resolved: the caller registered the search with
    ``resources.searches`` before it read their pointers (``targets``), and holds it until this returns.

    With ``explain``, each result's scores and ranks by the dense and the sparse signal alone are
    put in it by chunk ID (one more store query per signal and collection).
    """
    targets = list(targets)
    settings = resources.settings.retrieval
    mode = settings.mode
    weights = (settings.dense_weight, settings.sparse_weight)
    # More candidates than k, so the chunks that collapsing and the per-document cap drop do
    # not leave fewer than k results.
    candidates = k * _CANDIDATES_PER_RESULT
    reranker = await resources.reranker()
    if reranker is not None:
        candidates = max(candidates, settings.rerank_candidates)
    serving = {t.collection: t.model for t in targets if t.collection}
    start = time.perf_counter()
    dense: dict[str, list[float]] = {}
    if mode in ("dense", "hybrid") and serving:
        dense = {m: v for m, v in (embedded or {}).items() if m in serving.values()}
        models = sorted(set(serving.values()) - set(dense))
        embedders = [await resources.embedder_for(model) for model in models]
        vectors = await asyncio.gather(*(e.embed_query(question) for e in embedders))
        dense.update(zip(models, vectors, strict=True))
    sparse = resources.sparse.embed_query(question) if mode in ("sparse", "hybrid") else None
    timings["embed_ms"] = _ms(start)
    start = time.perf_counter()
    rankings = await asyncio.gather(
        *(
            resources.store.search(
                collection,
                dense=dense.get(model),
                sparse=sparse,
                k=candidates,
                weights=weights,
                rrf_k=settings.rrf_k,
                filter=filter,
                fusion=settings.fusion,
            )
            for collection, model in serving.items()
        )
    )
    timings["search_ms"] = _ms(start)
    # Chunks carry the corpus name they were indexed under: a renamed corpus's hits say its name now.
    names = {t.collection: t.corpus for t in targets if t.collection}
    rankings = [
        [
            hit if hit.corpus == names[collection] else replace(hit, corpus=names[collection])
            for hit in ranking
        ]
        for collection, ranking in zip(serving, rankings, strict=True)
    ]
    merged = merge_hits(rankings, candidates)
    if reranker is not None and merged:
        start = time.perf_counter()
        merged, verdict = await rerank_hits(
            reranker,
            question,
            merged,
            candidates=settings.rerank_candidates,
            timeout_s=settings.reranker_timeout_s,
        )
        timings["rerank_ms"] = _ms(start)
        if verdicts is not None:
            verdicts["reranker"] = verdict
    results = diversify(merged, k=k, max_per_document=settings.max_chunks_per_document)
    if explain is not None and results:
        explain.update(
            await _signal_scores(
                resources, serving, dense=dense, sparse=sparse, k=candidates, filter=filter, hits=results
            )
        )
    return results


@dataclass(frozen=True, slots=True)
class SignalScores:
    """A result's score and rank (from 1) by one signal alone; None: not among its candidates."""

    dense: float | None
    dense_rank: int | None
    sparse: float | None
    sparse_rank: int | None


async def _signal_scores(
    resources: Resources,
    serving: Mapping[str, str],
    *,
    dense: Mapping[str, list[float]],
    sparse: SparseVector | None,
    k: int,
    filter: SearchFilter | None,
    hits: Sequence[SearchHit],
) -> dict[str, SignalScores]:
    """Each hit's place in the dense-only and the sparse-only rankings of the same collections."""

    async def ranking(signal: str) -> dict[str, tuple[float, int]]:
        if (signal == "dense" and not dense) or (signal == "sparse" and sparse is None):
            return {}
        lists = await asyncio.gather(
            *(
                resources.store.search(
                    collection,
                    dense=dense.get(model) if signal == "dense" else None,
                    sparse=sparse if signal == "sparse" else None,
                    k=k,
                    filter=filter,
                )
                for collection, model in serving.items()
                if signal == "sparse" or model in dense
            )
        )
        merged = merge_hits(lists, k)
        return {hit.chunk_id: (hit.score, rank) for rank, hit in enumerate(merged, start=1)}

    by_dense, by_sparse = await asyncio.gather(ranking("dense"), ranking("sparse"))
    out = {}
    for hit in hits:
        d, s = by_dense.get(hit.chunk_id), by_sparse.get(hit.chunk_id)
        out[hit.chunk_id] = SignalScores(
            dense=d[0] if d else None,
            dense_rank=d[1] if d else None,
            sparse=s[0] if s else None,
            sparse_rank=s[1] if s else None,
        )
    return out


async def find(
    resources: Resources,
    query: str,
    *,
    corpus: str | None,
    k: int,
    allowed_corpora: frozenset[str] | None = None,
    filter: SearchFilter | None = None,
    timings: dict[str, float] | None = None,
    verdicts: dict[str, str] | None = None,
    explain: dict[str, SignalScores] | None = None,
) -> list[SearchHit]:
    """The ``k`` best chunks for ``query``, without an answer: checked and scoped as a question is.

    A corpus outside ``allowed_corpora`` (None: unrestricted) is reported as missing; ``filter``
    limits the chunks to some documents, inside the store's query. ``timings`` (milliseconds per
    stage) and ``verdicts`` (the reranker's, when one is on) are filled in when given.
    """
    k = _check_question(resources, query, k)
    # The query is embedded by the default model while the corpora are looked up: nearly every
    # corpus uses it (one that does not is embedded again by its own model in search_targets).
    default = resources.embedder
    vector = (
        asyncio.ensure_future(default.embed_query(query))
        if resources.settings.retrieval.mode in ("dense", "hybrid")
        else None
    )
    try:
        with resources.searches.track(_tracked(corpus, allowed_corpora)):
            corpora = await resolve_corpora(resources, corpus, allowed=allowed_corpora)
            if not corpora:
                return []
            embedded = {default.model_name: await vector} if vector is not None else None
            return await search_targets(
                resources,
                query,
                targets=corpora.values(),
                k=k,
                timings=timings if timings is not None else {},
                embedded=embedded,
                filter=filter,
                verdicts=verdicts,
                explain=explain,
            )
    finally:
        if vector is not None and not vector.done():
            vector.cancel()


def _tracked(corpus: str | None, allowed: frozenset[str] | None) -> frozenset[str] | None:
    """The corpora a question may search, as known before they are resolved (None: any)."""
    if corpus is not None:
        return frozenset([corpus])
    return allowed


# Candidates fetched from the store per result asked for (see search()).
_CANDIDATES_PER_RESULT = 4


def max_source_chars(resources: Resources) -> int:
    llm = resources.settings.llm
    return max(1000, (llm.context_tokens - llm.max_tokens - _PROMPT_OVERHEAD_TOKENS) * _CHARS_PER_TOKEN)


@dataclass(slots=True)
class _Prepared:
    """A checked question with its retrieved hits, the sources that fit the prompt, and cache state."""

    hits: list[SearchHit]
    sources: list[SearchHit]
    cache_key: str | None
    cached: Answer | None
    # The semantic cache's scope and the question's vector, to record the answer under.
    semantic: tuple[str, list[float]] | None = None
    # Guardrail verdicts, and the answer to give instead when one refused the question.
    guardrails: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    # The question as searched (a follow-up made standalone): the citation check leaves its words out.
    query: str = ""


def _scope(resources: Resources, corpora: dict[str, Target], k: int, ask: Ask) -> dict[str, Any]:
    settings = resources.settings
    retrieval = settings.retrieval
    chosen = ask.filter
    # Stop sequences are named only when set, so the keys of answers without them stay as they were.
    stop = {"stop": list(ask.stop)} if ask.stop else {}
    reranked = (
        ""
        if retrieval.reranker == "none"
        else f"+rerank:{retrieval.reranker}:{retrieval.reranker_model}:{retrieval.rerank_candidates}"
    )
    return {
        "corpora": {name: target.version for name, target in corpora.items()},
        # Different documents, different answer: a filtered question has its own cache entries.
        "filter": chosen.key() if chosen else None,
        "k": k,
        # how the chunks were found: a hybrid search's fusion decides which
        # and a reranker changes which become sources, and in what order (named only when on, so
        # the keys of answers without one stay as they were)
        "mode": (retrieval.mode if retrieval.mode != "hybrid" else f"hybrid:{retrieval.fusion}") + reranked,
        # A corpus's model changes only with its version (a re-index's switch); named for clarity.
        "embedding_model": ",".join(sorted({target.model for target in corpora.values()})),
        "llm_model": resources.llm.model,
        "generation": {
            "max_tokens": ask.max_tokens or settings.llm.max_tokens,
            "temperature": settings.llm.temperature if ask.temperature is None else ask.temperature,
            **stop,
            # what decides a refusal
            "min_confidence": settings.retrieval.min_confidence,
            "citation_min_support": settings.retrieval.citation_min_support,
            # what verification does with an unsupported sentence
            "unsupported": settings.answer.unsupported,
            # how the answer is composed, and whether never-mentioned terms refuse
            "answer_mode": settings.answer.mode,
            "extract_max_chars": settings.answer.extract_max_chars,
            "min_extract_support": settings.answer.min_extract_support,
            "check_answer_type": settings.answer.check_answer_type,
            "refuse_unmentioned": settings.answer.refuse_unmentioned,
        },
    }


def _cache_key(resources: Resources, ask: Ask, corpora: dict[str, Target], k: int) -> str:
    return answer_cache.answer_key(ask.question, **_scope(resources, corpora, k, ask))


async def _semantic_lookup(
    resources: Resources, ask: Ask, corpora: dict[str, Target], k: int
) -> tuple[Answer | None, tuple[str, list[float]] | None]:
    """A cached answer to a question close to ``question`` in the same scope, and the lookup's state.

    The question is embedded by the default embedder here; on a miss, retrieval reuses the vector.
    """
    index = resources.semantic
    if index is None:
        return None, None
    scope = answer_cache.scope_key(**_scope(resources, corpora, k, ask))
    vector = await resources.embedder.embed_query(ask.question)
    threshold = resources.settings.cache.semantic_threshold
    for match in await index.nearest(scope, vector, threshold=threshold):
        # The answer may have expired or been evicted from the cache before its index entry.
        if (raw := await resources.cache.get(match.key)) is not None:
            cached = answer_cache.load_answer(raw)
            cached.cache_kind, cached.cache_similarity = "semantic", round(match.similarity, 4)
            return cached, None
    return None, (scope, vector)


async def _save(resources: Resources, prepared: _Prepared, result: Answer) -> None:
    if prepared.cache_key is None:
        return
    await resources.cache.set(prepared.cache_key, answer_cache.dump_answer(result))
    if prepared.semantic is not None and resources.semantic is not None:
        scope, vector = prepared.semantic
        await resources.semantic.add(scope, vector, prepared.cache_key)


async def _prepare(resources: Resources, ask: Ask, timings: dict[str, float]) -> _Prepared:
    k = _check_question(resources, ask.question, ask.k)
    # Registered before the corpora's pointers are read, as search() does: the versions in the
    # cache key and the collections searched then come from one read.
    with resources.searches.track(_tracked(ask.corpus, ask.allowed_corpora)):
        return await _prepare_in_scope(resources, ask, k, timings)


async def _prepare_in_scope(resources: Resources, ask: Ask, k: int, timings: dict[str, float]) -> _Prepared:
    corpora = await resolve_corpora(resources, ask.corpus, allowed=ask.allowed_corpora)
    guards = resources.settings.guardrails
    check = check_question(ask.question, guards)
    if check.refusal is not None:
        return _Prepared([], [], None, None, guardrails=check.verdicts, refusal=check.refusal)
    # History changes the answer, so only first questions are cached.
    cacheable = ask.use_cache and not ask.history
    key = _cache_key(resources, ask, corpora, k) if cacheable else None
    if key is not None and (raw := await resources.cache.get(key)) is not None:
        exact = answer_cache.load_answer(raw)
        exact.guardrails = {**exact.guardrails, **check.verdicts}
        return _Prepared([], [], key, exact, guardrails=exact.guardrails)
    if not corpora:
        return _Prepared([], [], None, None, guardrails=check.verdicts)
    semantic = None
    if key is not None and resources.semantic is not None:
        start = time.perf_counter()
        cached, semantic = await _semantic_lookup(resources, ask, corpora, k)
        timings["semantic_cache_ms"] = _ms(start)
        if cached is not None:
            cached.guardrails = {**cached.guardrails, **check.verdicts}
            return _Prepared([], [], key, cached, guardrails=cached.guardrails)
    query = ask.question
    if ask.history and (how := resources.settings.retrieval.followups) != "off":
        start = time.perf_counter()
        query, _ = await standalone_question(
            resources.llm if how == "llm" else None,
            ask.question,
            ask.history,
            max_chars=resources.settings.retrieval.max_question_chars,
        )
        timings["rewrite_ms"] = _ms(start)
    # The semantic cache's lookup (first questions only: query is the question) embedded it already.
    embedded = {resources.embedder.model_name: semantic[1]} if semantic else None
    reranked: dict[str, str] = {}
    hits = await search_targets(
        resources,
        query,
        targets=corpora.values(),
        k=k,
        timings=timings,
        embedded=embedded,
        filter=ask.filter,
        verdicts=reranked,
    )
    sources = fit_sources(hits, max_chars=max_source_chars(resources))
    verdicts = {**check.verdicts, **reranked}
    if guards.source_injection:
        sources, removed = neutralise_sources(sources)
        verdicts["source_injection"] = f"neutralised {removed} sentence(s)" if removed else "passed"
    refusal = None
    if resources.settings.answer.refuse_unmentioned and sources:
        start = time.perf_counter()
        missing = await unmentioned(
            resources.store,
            resources.sparse,
            query,
            collections=[t.collection for t in corpora.values() if t.collection],
            filter=ask.filter,
        )
        timings["corpus_terms_ms"] = _ms(start)
        verdicts["corpus_terms"] = f"never mentioned: {', '.join(missing)}" if missing else "passed"
        refusal = never_mentioned_text(missing) if missing else None
    threshold = resources.settings.retrieval.min_confidence
    if threshold > 0 and sources and refusal is None:
        start = time.perf_counter()
        vector = semantic[1] if semantic else await resources.embedder.embed_query(query)
        confidence = await retrieval_confidence(resources, vector, sources)
        timings["confidence_ms"] = _ms(start)
        low = confidence < threshold
        verdicts["retrieval_confidence"] = f"{confidence:.3f} {'below' if low else 'at or above'} {threshold}"
        refusal = LOW_CONFIDENCE_ANSWER if low else None
    return _Prepared(hits, sources, key, None, semantic, guardrails=verdicts, refusal=refusal, query=query)


# Sentences of the sources compared with the question for retrieval confidence, at most.
_MAX_CONFIDENCE_SENTENCES = 32


async def retrieval_confidence(
    resources: Resources, question: Sequence[float], sources: Sequence[SearchHit]
) -> float:
    """How close the sources come to the question: the best cosine between it and one sentence.

    One sentence, not a whole chunk: a chunk on the right topic is close to any question about
    that topic, while the sentence holding an answer is usually closer to its question than any
    sentence of a chunk that lacks it (measured on single_topic_web: docs/retrieval.md).
    Sentences of fewer than three words are skipped. Vectors are unit length, so cosine is a dot.
    """
    texts = [sentence for hit in sources for sentence in sentences(hit.text) if len(sentence.split()) >= 3][
        :_MAX_CONFIDENCE_SENTENCES
    ]
    if not texts:
        return 0.0
    vectors = await resources.embedder.embed(texts)
    return max(sum(a * b for a, b in zip(vector, question, strict=True)) for vector in vectors)


def _messages(resources: Resources, ask: Ask, sources: list[SearchHit]) -> list[Message]:
    return build_messages(
        ask.question, sources, max_source_chars=max_source_chars(resources), history=ask.history
    )


async def answer(resources: Resources, ask: Ask) -> Answer:
    """A whole cited answer to ``ask``: :func:`stream_answer`'s events, collected.

    An exact repeat, or a question close enough to an earlier one, over the same unchanged corpora
    is served from the cache unless ``ask.use_cache`` is off.
    """
    events = [event async for event in await stream_answer(resources, ask)]
    done = events[-1]
    assert isinstance(done, DoneEvent), "a finished answer stream ends with its done event"
    return done.answer


async def _refuse_unasked(resources: Resources, prepared: _Prepared, timings: dict[str, float]) -> Answer:
    """Lore's refusal when the LLM is not asked: nothing found, low retrieval confidence, or a guardrail.

    A refusal from retrieval is cached like an answer (its key covers the corpora's versions and
    the confidence threshold), so asking again, or in other words, costs no search; a guardrail's
    refusal has no cache key and is not.
    """
    refusal = Answer(
        answer=prepared.refusal or NO_SOURCES_ANSWER,
        citations=[],
        sources=prepared.hits,
        model="",
        timings=timings,
        refused=True,
        guardrails=prepared.guardrails,
        answer_kind="refusal",
    )
    await _save(resources, prepared, refusal)
    return refusal


NO_SOURCES_ANSWER = "The documents do not contain an answer to this question: nothing relevant was found."
LOW_CONFIDENCE_ANSWER = (
    "The documents do not appear to contain an answer to this question: "
    "no passage found comes close enough to it."
)
UNSUPPORTED_ANSWER = (
    "The documents do not appear to contain an answer to this question: "
    "the answer drafted from them was not supported by the passages it cited."
)
NO_EXTRACT_ANSWER = (
    "The documents do not appear to contain an answer to this question: "
    "no sentence of the passages found comes close enough to it."
)


async def stream_answer(resources: Resources, ask: Ask) -> AsyncIterator[StreamEvent]:
    """The answer as events: verified sentences as the LLM completes them, then citations, then done.

    Every sentence is checked against the sources before it is sent (retrieval/verification.py),
    so nothing unverified is ever shown; one no source supports is sent as a removal instead (by
    ``answer.unsupported``). Input errors raise before the first event, so a caller can still
    answer with an error status.
    """
    total = time.perf_counter()
    timings: dict[str, float] = {}
    prepared = await _prepare(resources, ask, timings)
    return _stream(resources, ask, prepared, timings, total)


async def _stream(
    resources: Resources, ask: Ask, prepared: _Prepared, timings: dict[str, float], total: float
) -> AsyncIterator[StreamEvent]:
    if prepared.cached is not None:
        cached = prepared.cached
        cached.timings = {**timings, "total_ms": _ms(total)}
        yield TokenEvent(cached.answer)
        yield CitationsEvent(cached.citations)
        yield DoneEvent(cached)
        return
    if prepared.refusal is not None or not prepared.sources:
        timings["total_ms"] = _ms(total)
        refusal = await _refuse_unasked(resources, prepared, timings)
        yield TokenEvent(refusal.answer)
        yield CitationsEvent([])
        yield DoneEvent(refusal)
        return
    mode = _mode(resources)
    kind: AnswerKind = "extracted" if mode == "extract" else "generated"
    reported: dict[str, int] = {}
    overloaded: list[bool] = []
    verifier = _verifier(resources, prepared)
    start = time.perf_counter()
    if kind == "extracted":
        pieces = _once(_extracted(resources, prepared))
    else:
        pieces = resources.llm.stream(
            _messages(resources, ask, prepared.sources),
            usage=reported,
            max_tokens=ask.max_tokens,
            temperature=ask.temperature,
            stop=ask.stop,
        )
        if mode == "auto":
            # Under load the cheap answer: extraction costs no LLM time.
            pieces = _unless_overloaded(pieces, lambda: _extracted(resources, prepared), overloaded)
    settled = False
    async for verdict in _verified(pieces, verifier):
        if verdict.shown is not None:
            timings.setdefault("first_token_ms", _ms(total))
            # Once a supported sentence is shown the answer cannot be refused (Verifier.result).
            settled = settled or verdict.supported
            yield TokenEvent(verdict.shown, final=settled)
        elif verdict.reason is not None:
            yield SentenceRemovedEvent(verdict.sentence.text, verdict.reason)
    if overloaded:
        kind = "extracted"
    timings["generate_ms" if kind == "generated" else "extract_ms"] = _ms(start)
    checked = verifier.result()
    prepared.guardrails["groundedness"] = checked.verdict
    refused = not checked.supported
    refusal_text = UNSUPPORTED_ANSWER if kind == "generated" else NO_EXTRACT_ANSWER
    if refused:
        # The refusal is the first text the reader sees.
        timings.setdefault("first_token_ms", _ms(total))
        yield RefusalEvent(refusal_text)
    sources = prepared.sources
    citations = [] if refused else [Citation.from_hit(n, sources[n - 1]) for n in checked.cited]
    yield CitationsEvent(citations)
    timings["total_ms"] = _ms(total)
    # The server's own counts when it sends them (vLLM does); else both backends stream one token
    # per piece, so the count of pieces is the completion's length.
    usage = reported or ({"completion_tokens": verifier.fed} if kind == "generated" else {})
    result = Answer(
        refusal_text if refused else checked.text,
        citations,
        prepared.hits,
        resources.llm.model if kind == "generated" else EXTRACTIVE_MODEL,
        timings,
        usage=usage,
        refused=refused,
        guardrails=prepared.guardrails,
        unsupported_citations=[Citation.from_hit(n, sources[n - 1]) for n in checked.uncited],
        unsupported_sentences=checked.unsupported,
        answer_kind="refusal" if refused else kind,
    )
    # Only a stream that ran to its end is cached: a client that left mid-way never gets here.
    await _save(resources, prepared, result)
    yield DoneEvent(result)


# The model an extractive answer names: no LLM wrote it.
EXTRACTIVE_MODEL = "extractive"
# Sentences of the sources an extractive answer chooses from, at most (one embedding batch).
_MAX_EXTRACT_CANDIDATES = 96


def _mode(resources: Resources) -> str:
    """``answer.mode``, with auto resolved for the LLM at hand: extract with the small shipped model."""
    mode = resources.settings.answer.mode
    if mode == "auto" and resources.llm.small:
        return "extract"
    return mode


def _verifier(resources: Resources, prepared: _Prepared) -> Verifier:
    return Verifier(
        [hit.text for hit in prepared.sources],
        question=prepared.query,
        min_support=resources.settings.retrieval.citation_min_support,
        policy=resources.settings.answer.unsupported,
    )


async def _extracted(resources: Resources, prepared: _Prepared) -> str:
    """The extractive answer: the sources' sentences that best answer the question, each cited."""
    found = candidates([hit.text for hit in prepared.sources])[:_MAX_EXTRACT_CANDIDATES]
    if not found:
        return ""
    embedder = resources.embedder
    query = prepared.semantic[1] if prepared.semantic else await embedder.embed_query(prepared.query)
    vectors = await embedder.embed([c.scored for c in found])
    chosen = resources.settings.answer
    kind = expected_type(prepared.query) if chosen.check_answer_type else None
    if kind is not None:
        found = [with_typed_heading(c, kind) for c in found]
    extract = extract_answer(
        prepared.query,
        query,
        found,
        vectors,
        max_chars=chosen.extract_max_chars,
        required=None if kind is None else (lambda c: holds(f"{c.text}\n{c.follow}", kind)),
    )
    if kind is not None:
        prepared.guardrails["answer_type"] = f"the question asks for a {kind}; " + (
            "the answer's sentences hold one" if extract.chosen else "no relevant sentence holds one"
        )
    low = extract.support < chosen.min_extract_support
    prepared.guardrails["extract_support"] = (
        f"{extract.support:.3f} {'below' if low else 'at or above'} {chosen.min_extract_support}, "
        f"covering {extract.coverage:.0%} of the question's words"
    )
    return "" if low else extract.answer


async def _once(text: Awaitable[str]) -> AsyncIterator[str]:
    """A whole text as a one-piece stream."""
    yield await text


async def _unless_overloaded(
    pieces: AsyncIterator[str], fallback: Callable[[], Awaitable[str]], overloaded: list[bool]
) -> AsyncIterator[str]:
    """The LLM's pieces, or ``fallback``'s text when the LLM refuses the request as overloaded.

    Only a refusal before the first piece switches: a generation under way is never mixed with another.
    """
    try:
        first = await anext(pieces)
    except StopAsyncIteration:
        return
    except OverloadedError:
        overloaded.append(True)
        yield await fallback()
        return
    yield first
    async for piece in pieces:
        yield piece


async def _verified(pieces: AsyncIterator[str], verifier: Verifier) -> AsyncIterator[Verdict]:
    """The verdict on each sentence of the streamed draft as soon as it is complete."""
    async for text in pieces:
        for verdict in verifier.feed(text):
            yield verdict
    for verdict in verifier.finish():
        yield verdict


async def forget(resources: Resources, ask: Ask) -> None:
    """Remove the cached answer to ``ask`` (exact and semantic lookups both read that entry)."""
    k = _check_question(resources, ask.question, ask.k)
    corpora = await resolve_corpora(resources, ask.corpus, allowed=ask.allowed_corpora)
    await resources.cache.delete(_cache_key(resources, ask, corpora, k))
