"""Structure-aware, token-bounded chunking with overlap.

Blocks are packed into chunks that never cross a page or a section, split on sentences when a
block is too long, and on word pieces as a last resort. Every bound is counted with the
embedder's own tokenizer, so no chunk is ever silently truncated by the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingestion.extract import Block

# 2: chunks are embedded under a context header (ingestion.pipeline.embedding_text).
CHUNKER_VERSION = "lore-chunker-2"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


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


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    tokens: int
    joiner: str  # what goes before this unit when it follows another


def chunk_blocks(
    blocks: Sequence[Block], tokenizer: Tokenizer, *, max_tokens: int, overlap_tokens: int
) -> list[TextChunk]:
    """Pack ``blocks`` into chunks of at most ``max_tokens`` tokens with ``overlap_tokens`` overlap."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
    chunks: list[TextChunk] = []
    group: list[_Unit] = []
    group_key: tuple[int | None, tuple[str, ...]] | None = None
    for block in blocks:
        key = (block.page, block.headings)
        if group_key is not None and key != group_key:
            chunks.extend(_pack(group, group_key, max_tokens, overlap_tokens))
            group = []
        group_key = key
        group.extend(_units(block.text, tokenizer, max_tokens, first_joiner="\n\n"))
    if group_key is not None:
        chunks.extend(_pack(group, group_key, max_tokens, overlap_tokens))
    return chunks


def _units(text: str, tokenizer: Tokenizer, max_tokens: int, *, first_joiner: str) -> list[_Unit]:
    """A block as one unit, or as sentences, or as token windows, each within ``max_tokens``."""
    text = text.strip()
    if not text:
        return []
    offsets = tokenizer.token_offsets(text)
    if len(offsets) <= max_tokens:
        return [_Unit(text, len(offsets), first_joiner)]
    units: list[_Unit] = []
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) > 1:
        for i, sentence in enumerate(sentences):
            units.extend(
                _units(sentence, tokenizer, max_tokens, first_joiner=first_joiner if i == 0 else " ")
            )
        return units
    # One sentence longer than the window: cut between words where possible, since a cut inside a
    # word would re-tokenise differently and could grow the count.
    start = 0
    while start < len(offsets):
        end = min(start + max_tokens, len(offsets))
        if end < len(offsets):
            cut = end
            while cut > start + 1 and offsets[cut][0] <= offsets[cut - 1][1]:
                cut -= 1
            end = cut if cut > start + 1 else end
        piece = text[offsets[start][0] : offsets[end - 1][1]]
        units.append(_Unit(piece, end - start, first_joiner if start == 0 else " "))
        start = end
    return units


def _pack(
    units: list[_Unit], key: tuple[int | None, tuple[str, ...]], max_tokens: int, overlap_tokens: int
) -> list[TextChunk]:
    page, headings = key
    chunks: list[TextChunk] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # units in ``current`` not already emitted in an earlier chunk
    for unit in units:
        if current and size + unit.tokens > max_tokens:
            chunks.append(_emit(current, page, headings))
            current, size = _overlap_tail(current, overlap_tokens, max_tokens - unit.tokens)
            fresh = 0
        current.append(unit)
        size += unit.tokens
        fresh += 1
    if current and fresh:
        chunks.append(_emit(current, page, headings))
    return chunks


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


def _emit(units: list[_Unit], page: int | None, headings: tuple[str, ...]) -> TextChunk:
    text = units[0].text + "".join(u.joiner + u.text for u in units[1:])
    return TextChunk(text=text, page=page, headings=headings, tokens=sum(u.tokens for u in units))
