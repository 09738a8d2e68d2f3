"""What every extractor returns: a title and paragraph-like blocks that keep page and heading path."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like unit of text with where it sits in the document."""

    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """The text of one file: its title, its format, its blocks in reading order and its page count."""

    title: str
    kind: str
    blocks: list[Block]
    pages: int | None = None


def decode(data: bytes) -> str:
    """Text of ``data``: UTF-8 (with or without BOM), else Windows-1252, else Latin-1."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with inner whitespace tidied."""
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return [re.sub(r"[ \t]+", " ", p).strip() for p in parts if p.strip()]


def join_heading_blocks(blocks: list[Block]) -> list[Block]:
    """Attach a lone heading block to the first block under it, so a heading is never a chunk alone."""
    out: list[Block] = []
    for block in blocks:
        if (
            out
            and out[-1].headings
            and out[-1].text == out[-1].headings[-1]
            and block.headings == out[-1].headings
            and block.page == out[-1].page
        ):
            out[-1] = Block(f"{out[-1].text}\n{block.text}", block.page, block.headings)
        else:
            out.append(block)
    return out


def pack_blocks(blocks: Sequence[Block]) -> bytes:
    """``blocks`` as zlib-compressed JSON, the form the database keeps them in."""
    rows = [[b.text, b.page, list(b.headings)] for b in blocks]
    return zlib.compress(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode())


def unpack_blocks(data: bytes) -> list[Block]:
    """The blocks :func:`pack_blocks` packed."""
    return [Block(text, page, tuple(headings)) for text, page, headings in json.loads(zlib.decompress(data))]
