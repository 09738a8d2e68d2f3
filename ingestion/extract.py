"""Extraction: file bytes to text blocks that keep structure (title, headings, pages).

Pure functions over bytes; the pipeline reads files and runs these in a worker thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import PurePath

from core.errors import ExtractionError, UnsupportedFormatError

SUPPORTED_SUFFIXES = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
}

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_HTML_DROP = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template")
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like unit of text with where it sits in the document."""

    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    title: str
    kind: str
    blocks: list[Block]
    pages: int | None = None


def kind_of(name: str) -> str:
    """The format Lore reads a file as, from its suffix; raises for unsupported types."""
    suffix = PurePath(name).suffix.lower()
    try:
        return SUPPORTED_SUFFIXES[suffix]
    except KeyError:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormatError(
            f"unsupported file type {suffix or '(none)'!r}; Lore reads {supported}"
        ) from None


def extract(name: str, data: bytes) -> ExtractedDocument:
    """Extract ``data`` (the bytes of file ``name``) into structured blocks."""
    kind = kind_of(name)
    stem = PurePath(name).stem
    if not data.strip():
        raise ExtractionError("the file is empty")
    if kind == "pdf":
        doc = _extract_pdf(data, stem)
    elif kind == "html":
        doc = _extract_html(_decode(data), stem)
    elif kind == "markdown":
        doc = _extract_markdown(_decode(data), stem)
    else:
        doc = _extract_text(_decode(data), stem)
    if not any(b.text.strip() for b in doc.blocks):
        raise ExtractionError(
            "no text could be extracted (a scanned PDF needs OCR, which Lore does not do yet)"
        )
    return doc


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with inner whitespace tidied."""
    parts = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return [re.sub(r"[ \t]+", " ", p).strip() for p in parts if p.strip()]


def _extract_text(text: str, stem: str) -> ExtractedDocument:
    return ExtractedDocument(title=stem, kind="text", blocks=[Block(p) for p in _paragraphs(text)])


def _extract_markdown(text: str, stem: str) -> ExtractedDocument:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    title: str | None = None
    buffer: list[str] = []
    in_fence = False

    def flush() -> None:
        if buffer:
            headings = tuple(h for _, h in path)
            blocks.extend(Block(p, headings=headings) for p in _paragraphs("\n".join(buffer)))
            buffer.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match is None:
            buffer.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2).strip()
        if title is None and level == 1:
            title = heading
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
        # The heading line stays in the text: it carries meaning the embedder should see.
        buffer.append(line.strip())
        buffer.append("")
    flush()
    return ExtractedDocument(title=title or stem, kind="markdown", blocks=_merge_heading_blocks(blocks))


def _merge_heading_blocks(blocks: list[Block]) -> list[Block]:
    """Join each heading line to the paragraph after it, so a heading is never a chunk alone."""
    merged: list[Block] = []
    pending: Block | None = None
    for block in blocks:
        if pending is not None and pending.headings == block.headings:
            block = Block(f"{pending.text}\n{block.text}", block.page, block.headings)
            pending = None
        elif pending is not None:
            merged.append(pending)
            pending = None
        if _MD_HEADING.match(block.text) and "\n" not in block.text:
            pending = block
        else:
            merged.append(block)
    if pending is not None:
        merged.append(pending)
    return merged


def _extract_html(html: str, stem: str) -> ExtractedDocument:
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for el in root.find_all([*_HTML_HEADINGS, "p", "li", "pre", "blockquote", "table", "dt", "dd"]):
        if not isinstance(el, Tag):
            continue
        # Skip elements nested in one already taken whole (a <p> inside an <li> or a table cell).
        if el.find_parent(["li", "table", "pre", "blockquote"]) is not None:
            continue
        if el.name in _HTML_HEADINGS:
            level, heading = int(el.name[1]), el.get_text(" ", strip=True)
            if not heading:
                continue
            title = title or heading
            path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
            blocks.append(Block(heading, headings=tuple(h for _, h in path)))
            continue
        if el.name == "table":
            text = _table_text(el)
        elif el.name == "li":
            text = "- " + el.get_text(" ", strip=True)
        else:
            text = el.get_text(" ", strip=True)
        if text:
            blocks.append(Block(text, headings=tuple(h for _, h in path)))
    return ExtractedDocument(title=title or stem, kind="html", blocks=_join_heading_blocks(blocks))


def _join_heading_blocks(blocks: list[Block]) -> list[Block]:
    """Attach a lone heading block to the first block under it."""
    out: list[Block] = []
    for block in blocks:
        if (
            out
            and out[-1].headings
            and out[-1].text == out[-1].headings[-1]
            and block.headings == out[-1].headings
        ):
            out[-1] = Block(f"{out[-1].text}\n{block.text}", block.page, block.headings)
        else:
            out.append(block)
    return out


def _table_text(table: object) -> str:
    from bs4 import Tag

    assert isinstance(table, Tag)
    rows = []
    for tr in table.find_all("tr"):
        cells = [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _extract_pdf(data: bytes, stem: str) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("the PDF is encrypted; Lore cannot read it without the password")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            blocks.extend(Block(p, page=number) for p in _pdf_paragraphs(text))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError(f"the PDF could not be read: {exc}") from exc
    return ExtractedDocument(
        title=meta_title.strip() or stem, kind="pdf", blocks=blocks, pages=len(reader.pages)
    )


def _pdf_paragraphs(text: str) -> list[str]:
    """PDF text has a newline per visual line; rebuild paragraphs from blank lines or short lines."""
    paragraphs = _paragraphs(text)
    if len(paragraphs) > 1:
        return [re.sub(r"\s*\n\s*", " ", p) for p in paragraphs]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        current.append(line)
        # A line ending a sentence well short of the page width closes a paragraph.
        if line.endswith((".", ":", "?", "!")) and len(line) < 70:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out
