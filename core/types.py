"""Domain types passed between layers: plain, immutable where possible, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# How a cached answer was found: an exact repeat, or a question close in meaning to an earlier one.
CacheKind = Literal["exact", "semantic"]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector (BM25 term weights) as parallel index and value lists."""

    indices: list[int]
    values: list[float]


# A box on a page: (left, top, right, bottom) from its top-left corner, in PDF points (images: pixels).
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a chunk sits in its original document, so that a citation can be shown in place.

    ``spans`` are ``[start, end)`` ranges of its page's extracted text (``GET
    /v1/documents/{id}/text?page=N``; the whole text when the chunk has no page): their texts
    joined by newlines are the chunk's text. There is one span but for a table's later pieces,
    which repeat its caption and header row. ``boxes`` are its lines' boxes on the page (PDFs and
    images); ``anchor`` is the fragment of the nearest heading above it (HTML: ``source#anchor``).
    """

    spans: tuple[tuple[int, int], ...] = ()
    boxes: tuple[Box, ...] = ()
    anchor: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "spans": [list(s) for s in self.spans],
            "boxes": [list(b) for b in self.boxes],
            "anchor": self.anchor,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Location:
        """The location a payload (or :meth:`payload`'s dict) holds; chunks stored before locations: none."""
        return cls(
            spans=tuple((int(s), int(e)) for s, e in payload.get("spans") or ()),
            boxes=tuple(
                (float(a), float(b), float(c), float(d)) for a, b, c, d in payload.get("boxes") or ()
            ),
            anchor=payload.get("anchor") or None,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document, ready to embed and store."""

    id: str
    document_id: str
    corpus: str
    ordinal: int
    text: str
    source: str
    title: str
    page: int | None = None
    headings: tuple[str, ...] = ()
    # The document's format (pdf, markdown, html, text, ...) and date (Unix seconds: the source's
    # own modification time when known, else when the content was first indexed), for filters.
    doc_type: str = ""
    modified: int | None = None
    location: Location = field(default_factory=Location)

    def payload(self) -> dict[str, Any]:
        """The payload stored beside the vectors."""
        return {
            **self.location.payload(),
            "doc_type": self.doc_type,
            "modified": self.modified,
            "chunk_id": self.id,
            "document_id": self.document_id,
            "corpus": self.corpus,
            "ordinal": self.ordinal,
            "text": self.text,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "headings": list(self.headings),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        """The chunk a stored payload describes (the inverse of :meth:`payload`)."""
        return cls(
            id=str(payload["chunk_id"]),
            document_id=str(payload["document_id"]),
            corpus=str(payload["corpus"]),
            ordinal=int(payload["ordinal"]),
            text=str(payload["text"]),
            source=str(payload["source"]),
            title=str(payload.get("title") or ""),
            page=payload.get("page"),
            headings=tuple(payload.get("headings") or ()),
            doc_type=str(payload.get("doc_type") or ""),
            modified=payload.get("modified"),
            location=Location.from_payload(payload),
        )


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which chunks a search may return, applied inside the vector store's query.

    Each part left empty matches everything: ``sources``, any of these source URIs; ``doc_types``,
    any of these formats; ``modified_from``/``modified_to``, a document date (Unix seconds) in that
    inclusive range.
    """

    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()
    modified_from: int | None = None
    modified_to: int | None = None

    def __bool__(self) -> bool:
        return (
            bool(self.sources or self.doc_types)
            or self.modified_from is not None
            or (self.modified_to is not None)
        )

    def key(self) -> dict[str, Any]:
        """The filter as plain data, for cache keys."""
        return {
            "sources": sorted(self.sources),
            "doc_types": sorted(self.doc_types),
            "modified": [self.modified_from, self.modified_to],
        }


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """A chunk with its vectors, as written to the vector store."""

    chunk: Chunk
    dense: list[float]
    sparse: SparseVector | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One retrieved chunk with its score (higher is better)."""

    score: float
    chunk_id: str
    document_id: str
    corpus: str
    text: str
    source: str
    title: str
    page: int | None
    headings: tuple[str, ...] = ()
    location: Location = field(default_factory=Location)

    @classmethod
    def from_payload(cls, score: float, payload: dict[str, Any]) -> SearchHit:
        return cls(
            score=float(score),
            chunk_id=str(payload["chunk_id"]),
            document_id=str(payload["document_id"]),
            corpus=str(payload["corpus"]),
            text=str(payload["text"]),
            source=str(payload["source"]),
            title=str(payload.get("title") or ""),
            page=payload.get("page"),
            headings=tuple(payload.get("headings") or ()),
            location=Location.from_payload(payload),
        )


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source that an answer cites."""

    n: int
    document_id: str
    title: str
    source: str
    page: int | None
    text: str
    location: Location = field(default_factory=Location)
    score: float | None = None  # the passage's retrieval score (None: not known, e.g. an older answer)

    @classmethod
    def from_hit(cls, n: int, hit: SearchHit) -> Citation:
        """Source ``n`` of a prompt, the search hit it was made from."""
        return cls(n, hit.document_id, hit.title, hit.source, hit.page, hit.text, hit.location, hit.score)


@dataclass(frozen=True, slots=True)
class UnsupportedSentence:
    """A sentence of a drafted answer that no source supports, and why (see retrieval/verification.py)."""

    sentence: str
    reason: str


# How an answer was composed: drafted by the LLM, extracted from the sources' own sentences, or a
# refusal (nothing found, low confidence, terms the documents never mention, a guardrail, or a draft
# no source supported).
AnswerKind = Literal["generated", "extracted", "refusal"]


@dataclass(slots=True)
class Answer:
    """A generated answer with its citations, the sources it was given, and timings in ms.

    ``cached`` is true when the answer was served from the cache; ``cache_kind`` says how ("exact"
    repeat or "semantic": a question close to an earlier one, with its cosine ``cache_similarity``).
    """

    answer: str
    citations: list[Citation]
    sources: list[SearchHit]
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    cache_kind: CacheKind | None = None
    cache_similarity: float | None = None
    # True when Lore says the documents do not answer it (nothing found, or a guardrail refused).
    refused: bool = False
    # Each guardrail's verdict on this answer (see retrieval/guardrails.py).
    guardrails: dict[str, str] = field(default_factory=dict)
    # Sources the draft cited that support none of its delivered sentences: not in ``citations``.
    unsupported_citations: list[Citation] = field(default_factory=list)
    # Sentences of the draft no source supports: removed, marked or kept by ``answer.unsupported``.
    unsupported_sentences: list[UnsupportedSentence] = field(default_factory=list)
    answer_kind: AnswerKind = "generated"
