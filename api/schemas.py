"""Request and response schemas of the HTTP API (separate from tables and domain types)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, ConfigDict, Field

from api.corpora.schemas import CorpusRef
from core.types import Answer, AnswerKind, CacheKind, Citation, SearchFilter, SearchHit, UnsupportedSentence

if TYPE_CHECKING:
    from ingestion.documents import DocumentText


class SearchFilters(BaseModel):
    """Which documents a search or an answer may draw on; applied inside the vector store's query."""

    model_config = ConfigDict(extra="forbid")

    source: list[str] = Field(
        default_factory=list, max_length=100, description="Only these documents (file paths or URLs, exact)."
    )
    doc_type: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Only these formats: pdf, markdown, html, text, docx, pptx, xlsx, csv, email.",
    )
    date_from: datetime | None = Field(
        default=None,
        description=(
            "Only documents dated at or after this (ISO 8601). A document's date is its file's "
            "modification time or its page's Last-Modified header, else when it was first indexed."
        ),
    )
    date_to: datetime | None = Field(default=None, description="Only documents dated at or before this.")

    def to_domain(self) -> SearchFilter:
        return SearchFilter(
            sources=tuple(self.source),
            doc_types=tuple(self.doc_type),
            modified_from=_seconds(self.date_from),
            modified_to=_seconds(self.date_to),
        )


def _seconds(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, description="The question, in plain language.")
    corpus: CorpusRef | None = Field(
        default=None, description="Corpus to search; null searches every corpus."
    )
    k: int | None = Field(
        default=None, ge=1, le=50, strict=True, description="Sources to retrieve (default from settings)."
    )
    conversation_id: str | None = Field(
        default=None,
        description="A conversation of yours to continue: its turns inform the answer, which is saved in it.",
    )
    filters: SearchFilters | None = Field(default=None, description="Limit the sources to these documents.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, description="What to find, in plain language.")
    corpus: CorpusRef | None = Field(
        default=None, description="Corpus to search; null searches every corpus."
    )
    k: int = Field(ge=1, le=50, strict=True, description="Chunks to return.")
    filters: SearchFilters | None = Field(default=None, description="Limit the results to these documents.")
    explain: bool = Field(
        default=False,
        description=(
            "Also give each result's score and rank by the dense and the sparse signal alone "
            "(`scores`), to see why a passage ranks where it does. Costs a store query per signal."
        ),
    )


class LocationPublic(BaseModel):
    """Where a passage sits in its original document."""

    model_config = ConfigDict(from_attributes=True)

    spans: list[tuple[int, int]] = Field(
        default_factory=list,
        description=(
            "[start, end) character ranges of GET /v1/documents/{document_id}/text?page={page} "
            "(without ?page when page is null); their texts joined by newlines are the passage's "
            "text. One range, but for a table's later pieces, which repeat its caption and header."
        ),
    )
    boxes: list[tuple[float, float, float, float]] = Field(
        default_factory=list,
        description=(
            "Boxes of its lines on the page: [left, top, right, bottom] from the page's top-left "
            "corner, in PDF points (1/72 inch; pixels for images). Empty for formats without pages."
        ),
    )
    anchor: str | None = Field(
        default=None, description="HTML: the fragment of the nearest heading above it (open source#anchor)."
    )


class DocumentTextPublic(BaseModel):
    """A document's extracted text, whole or one page: what a passage's ``location.spans`` index."""

    id: str
    corpus: str
    title: str
    source: str = Field(description="File path or URL of the document.")
    pages: int | None = Field(description="Page count (PDF, slides, TIFF frames), or null.")
    page: int | None = Field(description="The page this text is from; null: the whole document.")
    text: str = Field(
        description=(
            "The text Lore extracted and indexed: the page's blocks (paragraphs, tables as Markdown) "
            "joined by blank lines. A passage's location.spans index it."
        )
    )

    @classmethod
    def from_domain(cls, doc: DocumentText, **extra: object) -> Self:
        return cls(
            id=doc.id,
            corpus=doc.corpus,
            title=doc.title,
            source=doc.source,
            pages=doc.pages,
            page=doc.page,
            text=doc.text,
            **extra,
        )


class PassagePublic(BaseModel):
    """A chunk of a document, as search results and citations show it."""

    document_id: str
    title: str
    source: str = Field(description="File path or URL of the document.")
    page: int | None = Field(description="Page number (PDF), or null.")
    text: str = Field(description="The chunk's text.")
    location: LocationPublic = Field(
        default_factory=LocationPublic, description="Where the passage sits in its original document."
    )


class SignalScoresPublic(BaseModel):
    """A result's scores by each signal: null where it is not among that signal's candidates."""

    model_config = ConfigDict(from_attributes=True)

    hybrid: float = Field(description="The score it was ranked by (fused, or the reranker's).")
    dense: float | None = Field(description="Cosine similarity of the embeddings.")
    dense_rank: int | None = Field(description="Its rank by the dense signal alone, from 1.")
    sparse: float | None = Field(description="The sparse (keyword) score.")
    sparse_rank: int | None = Field(description="Its rank by the sparse signal alone, from 1.")


class SearchResultPublic(PassagePublic):
    score: float = Field(description="Relevance in the retrieval mode's scale (higher is better).")
    scores: SignalScoresPublic | None = Field(default=None, description="With explain: per-signal scores.")

    @classmethod
    def from_domain(cls, hit: SearchHit) -> SearchResultPublic:
        return cls.model_validate(hit, from_attributes=True)


class SearchResponse(BaseModel):
    results: list[SearchResultPublic] = Field(description="Best first.")
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="Milliseconds spent per stage (embed_ms, search_ms, rerank_ms), and in total.",
    )
    verdicts: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "How the results were ranked, when that is worth saying: 'reranker' tells whether the "
            "reranker ordered them or failed or timed out, leaving the fused order."
        ),
    )


class CitationPublic(PassagePublic):
    n: int = Field(description="The source's number in the prompt, as cited in the answer ([n]).")
    score: float | None = Field(
        default=None, description="The passage's retrieval score, in the retrieval mode's scale."
    )

    @classmethod
    def from_domain(cls, citation: Citation) -> CitationPublic:
        return cls.model_validate(citation, from_attributes=True)


class UnsupportedSentencePublic(BaseModel):
    sentence: str = Field(description="The sentence as the model drafted it, markers included.")
    reason: str = Field(description='Why no source supports it, e.g. "`--print-table` is in no source".')

    @classmethod
    def from_domain(cls, unsupported: UnsupportedSentence) -> UnsupportedSentencePublic:
        return cls(sentence=unsupported.sentence, reason=unsupported.reason)


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationPublic]
    model: str = Field(description="The model that wrote the answer (empty when no source was found).")
    timings: dict[str, float] = Field(description="Milliseconds spent per stage, and in total.")
    usage: dict[str, int] = Field(
        default_factory=dict, description="Tokens in and out, when the LLM reports them."
    )
    cached: bool = Field(default=False, description="True when the answer was served from the answer cache.")
    cache_kind: CacheKind | None = Field(
        default=None,
        description=(
            "How a cached answer was found: an exact repeat, or a question close in meaning to an "
            "earlier one over the same corpora (semantic)."
        ),
    )
    cache_similarity: float | None = Field(
        default=None, description="Cosine similarity to the earlier question, for a semantic hit."
    )
    refused: bool = Field(
        default=False,
        description=(
            "True when Lore says the documents do not contain the answer: nothing relevant was "
            "found, no source came close enough to the question (retrieval.min_confidence), no "
            "sentence of the drafted answer was supported by a source, or a guardrail refused "
            "the question."
        ),
    )
    answer_kind: AnswerKind = Field(
        default="generated",
        description=(
            "How the answer was composed: generated by the LLM (every sentence verified against its "
            "source), extracted from the sources' own sentences (answer.mode), or a refusal."
        ),
    )
    unsupported_citations: list[CitationPublic] = Field(
        default_factory=list,
        description="Sources the draft cited that support none of its delivered sentences; not in citations.",
    )
    unsupported_sentences: list[UnsupportedSentencePublic] = Field(
        default_factory=list,
        description=(
            "Sentences of the draft that no source supports, each with its reason: removed from the "
            "answer, marked [unverified] or kept, by the setting answer.unsupported."
        ),
    )
    guardrails: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Each guardrail's verdict: question_injection (passed, flagged, refused), topics "
            "(passed, refused), source_injection (passed, or how many sentences were neutralised), "
            "retrieval_confidence (the score against retrieval.min_confidence), groundedness "
            "(how many sentences of the draft the sources support, and how many were dropped)."
        ),
    )

    @classmethod
    def from_domain(cls, answer: Answer) -> QueryResponse:
        return cls(
            answer=answer.answer,
            citations=[CitationPublic.from_domain(c) for c in answer.citations],
            model=answer.model,
            timings=answer.timings,
            usage=answer.usage,
            cached=answer.cached,
            cache_kind=answer.cache_kind,
            cache_similarity=answer.cache_similarity,
            refused=answer.refused,
            answer_kind=answer.answer_kind,
            guardrails=answer.guardrails,
            unsupported_citations=[CitationPublic.from_domain(c) for c in answer.unsupported_citations],
            unsupported_sentences=[
                UnsupportedSentencePublic.from_domain(u) for u in answer.unsupported_sentences
            ],
        )


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What went wrong, for people.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str
    version: str
