"""Structure-aware, token-bounded chunking with overlap, each chunk located in its original.

Blocks are packed into chunks that never cross a page or a section, split on sentences when a
block is too long, and on word pieces as a last resort. Every bound is counted with the
embedder's own tokenizer, so no chunk is ever silently truncated by the model.

A table block is chunked alone and split between rows only: every piece repeats the table's
caption and header row, so that a figure always stays with its labels.

Each chunk knows where it came from: ``spans`` are ``[start, end)`` ranges of its page's extracted
text (a page's blocks joined by a blank line, as ``GET /v1/documents/{id}/text?page=N`` serves it;
the whole document's for blocks without a page), and the spans' texts joined by newlines are the
chunk's text, exactly. ``boxes`` are its lines' boxes on the page (PDFs and images), and
``anchor`` the fragment of the nearest heading (HTML).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from core import tables
from ingestion.formats.document import Block, BlockKind, Box

# 2: chunks are embedded under a context header (ingestion.pipeline.embedding_text).
# 3: chunks are slices of their page's text with spans and boxes; tables split by rows.
CHUNKER_VERSION = "lore-chunker-3"

# What separates the blocks of a page in its text (ingestion.documents.document_text).
BLOCK_SEPARATOR = "\n\n"
# What joins a chunk's spans into its text (more than one only for a table's later pieces).
SPAN_JOINER = "\n"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")

Span = tuple[int, int]


class Tokenizer(Protocol):
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text``."""
        ...


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str
    page: int | None
    headings: tuple[str, ...]
    tokens: int
    spans: tuple[Span, ...] = ()
    boxes: tuple[Box, ...] = ()
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece of a block that is never cut: its span in the page's text and its tokens."""

    start: int
    end: int
    tokens: int


@dataclass(frozen=True, slots=True)
class _Placed:
    """A block with the offset of its text in its page's text."""

    block: Block
    offset: int


def chunk_blocks(
    blocks: Sequence[Block], tokenizer: Tokenizer, *, max_tokens: int, overlap_tokens: int
) -> list[TextChunk]:
    """Pack ``blocks`` into chunks of at most ``max_tokens`` tokens with ``overlap_tokens`` overlap."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
    pages = _page_texts(blocks)
    chunks: list[TextChunk] = []
    group: list[_Placed] = []
    for placed in _placed(blocks):
        block = placed.block
        if group and (block.kind is BlockKind.TABLE or _key(block) != _key(group[0].block)):
            chunks.extend(_pack_text(group, pages, tokenizer, max_tokens, overlap_tokens))
            group = []
        if block.kind is BlockKind.TABLE:
            chunks.extend(_pack_table(placed, pages, tokenizer, max_tokens))
        else:
            group.append(placed)
    if group:
        chunks.extend(_pack_text(group, pages, tokenizer, max_tokens, overlap_tokens))
    return chunks


def page_text(blocks: Sequence[Block], page: int | None) -> str:
    """The text of ``page`` that chunk spans index (None: the whole document's, every page's)."""
    return BLOCK_SEPARATOR.join(b.text for b in blocks if page is None or b.page == page)


def _key(block: Block) -> tuple[int | None, tuple[str, ...]]:
    return block.page, block.headings


def _placed(blocks: Sequence[Block]) -> Iterator[_Placed]:
    """Each block with its offset in its page's text; a block without a page, in the whole text."""
    ends: dict[int | None, int] = {}

    def place(page: int | None, length: int) -> int:
        start = ends[page] + len(BLOCK_SEPARATOR) if page in ends else 0
        ends[page] = start + length
        return start

    for block in blocks:
        whole = place(None, len(block.text))
        yield _Placed(block, whole if block.page is None else place(block.page, len(block.text)))


def _page_texts(blocks: Sequence[Block]) -> dict[int | None, str]:
    return {page: page_text(blocks, page) for page in {b.page for b in blocks}}


def _units(text: str, offset: int, tokenizer: Tokenizer, max_tokens: int) -> list[_Unit]:
    """``text`` (at ``offset`` in its page) as one unit, or as sentences, or as token windows."""
    stripped = text.strip()
    if not stripped:
        return []
    offset += len(text) - len(text.lstrip())
    text = stripped
    offsets = tokenizer.token_offsets(text)
    if len(offsets) <= max_tokens:
        return [_Unit(offset, offset + len(text), len(offsets))]
    pieces = _sentences(text)
    if len(pieces) > 1:
        return [
            u for start, end in pieces for u in _units(text[start:end], offset + start, tokenizer, max_tokens)
        ]
    # One sentence longer than the window: cut between words where possible, since a cut inside a
    # word would re-tokenise differently and could grow the count.
    units: list[_Unit] = []
    start = 0
    while start < len(offsets):
        end = min(start + max_tokens, len(offsets))
        if end < len(offsets):
            cut = end
            while cut > start + 1 and offsets[cut][0] <= offsets[cut - 1][1]:
                cut -= 1
            end = cut if cut > start + 1 else end
        units.append(_Unit(offset + offsets[start][0], offset + offsets[end - 1][1], end - start))
        start = end
    return units


def _sentences(text: str) -> list[Span]:
    """The spans of ``text``'s sentences (the whitespace between them left out)."""
    spans: list[Span] = []
    start = 0
    for gap in _SENTENCE_END.finditer(text):
        if text[start : gap.start()].strip():
            spans.append((start, gap.start()))
        start = gap.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _pack_text(
    group: list[_Placed],
    pages: dict[int | None, str],
    tokenizer: Tokenizer,
    max_tokens: int,
    overlap_tokens: int,
) -> list[TextChunk]:
    """Chunks of consecutive text blocks of one page and section."""
    units = [u for p in group for u in _units(p.block.text, p.offset, tokenizer, max_tokens)]
    chunks: list[TextChunk] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # units in ``current`` not already emitted in an earlier chunk
    for unit in units:
        if current and size + unit.tokens > max_tokens:
            chunks.append(_emit(group, pages, [(current[0].start, current[-1].end)], current))
            current, size = _overlap_tail(current, overlap_tokens, max_tokens - unit.tokens)
            fresh = 0
        current.append(unit)
        size += unit.tokens
        fresh += 1
    if current and fresh:
        chunks.append(_emit(group, pages, [(current[0].start, current[-1].end)], current))
    return chunks


def _pack_table(
    placed: _Placed, pages: dict[int | None, str], tokenizer: Tokenizer, max_tokens: int
) -> list[TextChunk]:
    """A table's chunks: as many whole rows as fit, each piece under the caption and header row."""
    text, offset = placed.block.text, placed.offset
    lines = _line_spans(text)
    rule = next(
        (
            i
            for i, (start, end) in enumerate(lines)
            if i > 0 and tables.is_rule(text[start:end]) and tables.is_row(_slice(text, lines[i - 1]))
        ),
        None,
    )
    if rule is None or rule == len(lines) - 1:
        # Not a table this chunker can split by rows: chunked as text.
        return _pack_text([placed], pages, tokenizer, max_tokens, 0)
    prefix_end = lines[rule][1]
    prefix_tokens = len(tokenizer.token_offsets(text[:prefix_end]))
    rows = [
        _Unit(offset + s, offset + e, len(tokenizer.token_offsets(text[s:e]))) for s, e in lines[rule + 1 :]
    ]
    prefix: Span = (offset, offset + prefix_end)
    chunks: list[TextChunk] = []
    current: list[_Unit] = []
    size = prefix_tokens
    for row in rows:
        # Each row costs its tokens and about one for the newline before it.
        if current and size + row.tokens + 1 > max_tokens:
            chunks.append(_emit_table(placed, pages, prefix, current, prefix_tokens))
            current, size = [], prefix_tokens
        current.append(row)
        size += row.tokens + 1
    chunks.append(_emit_table(placed, pages, prefix, current, prefix_tokens))
    return chunks


def _emit_table(
    placed: _Placed, pages: dict[int | None, str], prefix: Span, rows: list[_Unit], prefix_tokens: int
) -> TextChunk:
    first, last = rows[0].start, rows[-1].end
    # The first piece follows its header in the page: one span. Later ones repeat the header.
    spans = [(prefix[0], last)] if first == prefix[1] + 1 else [prefix, (first, last)]
    units = [_Unit(prefix[0], prefix[1], prefix_tokens), *rows]
    return _emit([placed], pages, spans, units)


def _emit(
    group: list[_Placed], pages: dict[int | None, str], spans: list[Span], units: list[_Unit]
) -> TextChunk:
    block = group[0].block
    page_text = pages[block.page]
    text = SPAN_JOINER.join(page_text[s:e] for s, e in spans)
    return TextChunk(
        text=text,
        page=block.page,
        headings=block.headings,
        tokens=sum(u.tokens for u in units),
        spans=tuple(spans),
        boxes=_boxes(group, spans),
        anchor=next((p.block.anchor for p in group if p.block.anchor), None),
    )


def _boxes(group: list[_Placed], spans: list[Span]) -> tuple[Box, ...]:
    """The boxes of the group's lines that the spans overlap, in reading order."""
    boxes: list[Box] = []
    for placed in group:
        for line in placed.block.lines:
            start, end = placed.offset + line.start, placed.offset + line.end
            if any(start < e and s < end for s, e in spans):
                boxes.append(line.box)
    return tuple(boxes)


def _line_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    start = 0
    for line in text.split("\n"):
        spans.append((start, start + len(line)))
        start += len(line) + 1
    return [s for s in spans if text[s[0] : s[1]].strip()]


def _slice(text: str, span: Span) -> str:
    return text[span[0] : span[1]]


def _overlap_tail(units: list[_Unit], overlap_tokens: int, room: int) -> tuple[list[_Unit], int]:
    """The trailing units of a chunk that fit in the overlap (and leave room for the next unit)."""
    budget = min(overlap_tokens, room)
    tail: list[_Unit] = []
    size = 0
    for unit in reversed(units):
        if size + unit.tokens > budget:
            break
        tail.insert(0, unit)
        size += unit.tokens
    return tail, size
