"""What every extractor returns: a title and paragraph-like blocks that keep page and heading path."""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from core.errors import ExtractionError
from core.tables import markdown_table as markdown_table
from core.types import Box as Box

# What no stored text may hold: C0 and C1 control characters (but tab, newline and carriage
# return), DEL, lone surrogates and Unicode non-characters. PostgreSQL refuses NUL in text, and a
# lone surrogate cannot be encoded as UTF-8 at all; the others are noise to the embedder and BM25.
_NONCHARACTERS = "".join(chr(plane * 0x10000 + low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_UNWANTED = re.compile(f"[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")
# Vertical tab and form feed separate lines and pages: dropped, they would join two words.
_LINE_BREAKS = re.compile("[\x0b\x0c]")
# Control bytes that text files do not hold, counted to tell binary files from text: all of C0
# and DEL but tab, newline, carriage return, form feed and escape (terminal logs keep colour codes).
_BINARY_BYTES = bytes([*range(0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
# Random bytes hold about 11% of those and about 45% invalid UTF-8; text holds next to none of the
# first, and Windows-1252 or Latin-1 text a few percent of the second. A stray NUL or two (pasted
# into a title) is cleaned away rather than failing the file.
_MAX_BINARY_SHARE = 0.05
_MIN_BINARY_BYTES = 4
_MAX_INVALID_UTF8_SHARE = 0.30
# Byte-order marks of the UTF-16 and UTF-32 text that Windows tools save; UTF-32 LE's starts with
# UTF-16 LE's, so it is tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class BlockKind(StrEnum):
    TEXT = "text"
    # A Markdown table (see :func:`markdown_table`): caption lines, the header row, the
    # ``| --- |`` rule, then one line per row. The chunker splits it between rows only, and every
    # piece repeats the caption and the header.
    TABLE = "table"


@dataclass(frozen=True, slots=True)
class Line:
    """One visual line of a block: its span ``[start, end)`` in the block's text and its box."""

    start: int
    end: int
    box: Box


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like unit of text (or a table) with where it sits in the document.

    ``lines`` (PDF pages and images) locate the text on its page; ``anchor`` (HTML) is the
    fragment of the nearest heading above it, so ``source#anchor`` opens the page there.
    """

    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()
    kind: BlockKind = BlockKind.TEXT
    lines: tuple[Line, ...] = ()
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """The text of one file: its title, its format, its blocks in reading order and its page count."""

    title: str
    kind: str
    blocks: list[Block]
    pages: int | None = None
    ocr_pages: int = 0  # pages whose text OCR read (scanned PDF pages, images)


def decode(data: bytes) -> str:
    """Text of ``data``: UTF-16 or UTF-32 after their BOM, UTF-8 (with or without BOM), else
    Windows-1252, else Latin-1; raises ExtractionError for binary data (see :func:`refuse_binary`)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise ExtractionError(
                    f"the file starts with a {encoding} byte-order mark but is not {encoding} text"
                ) from exc
    refuse_binary(data)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def refuse_binary(data: bytes) -> None:
    """Raise ExtractionError when ``data``, named as a text format, holds binary content instead."""
    controls = len(data) - len(data.translate(None, _BINARY_BYTES))
    if controls >= _MIN_BINARY_BYTES and controls > _MAX_BINARY_SHARE * len(data):
        raise ExtractionError(
            f"the file looks binary, not text: {controls} of its {len(data)} bytes are control characters"
        )
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    # Each invalid sequence decodes to one U+FFFD; those the file itself holds do not count.
    invalid = data.decode("utf-8", "replace").count("\ufffd") - data.count("\ufffd".encode())
    if invalid > _MAX_INVALID_UTF8_SHARE * len(data):
        raise ExtractionError(
            f"the file looks binary, not text: {invalid} of its {len(data)} bytes are not valid UTF-8 "
            "(save a text file in another encoding as UTF-8)"
        )


def clean_text(text: str) -> str:
    """``text`` without control characters (but tab, newline, carriage return), lone surrogates and
    non-characters; vertical tab and form feed become newlines."""
    return _UNWANTED.sub("", _LINE_BREAKS.sub("\n", text))


def clean_document(doc: ExtractedDocument, stem: str) -> ExtractedDocument:
    """``doc`` with its title, headings and blocks cleaned (:func:`clean_text`); blocks left empty
    are dropped, and a title left empty becomes ``stem``."""
    blocks = [
        replace(
            block,
            text=text,
            headings=tuple(h for h in (clean_text(h).strip() for h in block.headings) if h),
            # Line spans index the text: cleaning that moved characters leaves them unknown.
            lines=block.lines if text == block.text else (),
        )
        for block in doc.blocks
        if (text := clean_text(block.text)).strip()
    ]
    title = clean_text(doc.title).strip()
    return replace(doc, title=title if names_something(title) else stem, blocks=blocks)


# Titles that document metadata holds but that name nothing: a filing's accession number
# ("0000320193-23-000077"), an editor's placeholder, a converter's file name.
_PLACEHOLDER_TITLE = re.compile(
    r"(?i)(untitled( document)?|document\d*|presentation\d*|book\d*|slide \d+|title|"
    r"microsoft (word|powerpoint|excel) - .*|.*\.(docx?|pptx?|xlsx?|pdf|indd|tex|dvi))"
)


def names_something(title: str) -> bool:
    """Whether a metadata title names its document: some word of three letters or more, and not
    a placeholder (an ID, "Untitled", "Microsoft Word - draft.docx"). Else the file's name does."""
    return bool(re.search(r"[^\W\d_]{3,}", title)) and not _PLACEHOLDER_TITLE.fullmatch(title.strip())


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
            heading = out[-1]
            shift = len(heading.text) + 1
            out[-1] = replace(
                block,
                text=f"{heading.text}\n{block.text}",
                lines=heading.lines
                + tuple(Line(ln.start + shift, ln.end + shift, ln.box) for ln in block.lines),
                anchor=heading.anchor or block.anchor,
            )
        else:
            out.append(block)
    return out


def pack_blocks(blocks: Sequence[Block]) -> bytes:
    """``blocks`` as zlib-compressed JSON, the form the database keeps them in."""
    rows = [
        [
            b.text,
            b.page,
            list(b.headings),
            b.kind.value,
            [[ln.start, ln.end, *(round(v, 2) for v in ln.box)] for ln in b.lines],
            b.anchor,
        ]
        for b in blocks
    ]
    return zlib.compress(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode())


def unpack_blocks(data: bytes) -> list[Block]:
    """The blocks :func:`pack_blocks` packed (also those packed before blocks had a kind, lines and
    an anchor: three fields a row)."""
    blocks = []
    for row in json.loads(zlib.decompress(data)):
        text, page, headings = row[:3]
        kind, lines, anchor = row[3:] if len(row) > 3 else (BlockKind.TEXT, [], None)
        blocks.append(
            Block(
                text,
                page,
                tuple(headings),
                BlockKind(kind),
                tuple(Line(s, e, (x0, y0, x1, y1)) for s, e, x0, y0, x1, y1 in lines),
                anchor,
            )
        )
    return blocks
