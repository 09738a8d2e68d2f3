"""PDF text with page numbers and line boxes: PDFium first, pypdf for the files PDFium cannot open.

On the SEC 10-Q test set PDFium (pypdfium2) read about 370 pages/s against pypdf's 19, with the
same text, and opened two files on which pypdf stopped at its parsing limits.

PDFium gives every character's index and box, so each paragraph keeps its lines' boxes (for a
citation shown in place), tables are found from where words sit (:mod:`ingestion.formats.pdf_tables`)
and become Markdown table blocks, and a page with no text layer is rendered and read by OCR
(:mod:`ingestion.formats.ocr`, by ``ingestion.ocr``).
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core.errors import ExtractionError
from ingestion.formats import ocr, pdf_tables
from ingestion.formats.document import Block, Box, ExtractedDocument, Line, paragraphs

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

log = logging.getLogger("lore.ingestion")

_ENCRYPTED = "the PDF is encrypted; Lore cannot read it without the password"
# PDFium is not thread-safe, not even across documents: one call at a time in the whole process.
_PDFIUM_LOCK = threading.Lock()
# A line ending a sentence well short of the page width closes a paragraph (with no blank lines).
_SHORT_LINE = 70


@dataclass(frozen=True, slots=True)
class PdfLine:
    """One visual line of a page: its characters ``[start, end)`` in PDFium's page text, its text
    (whitespace tidied) and its box (points, from the page's top-left corner)."""

    start: int
    end: int
    text: str
    box: Box


@dataclass(slots=True)
class _Page:
    number: int
    blocks: list[Block]
    image: Image.Image | None = None  # rendered for OCR, until OCR has read it
    ocr: bool = False  # its blocks are what OCR read


def extract_pdf(data: bytes, stem: str, options: ocr.OcrOptions | None = None) -> ExtractedDocument:
    """Blocks of paragraphs and tables, each with its 1-based page number and line boxes; the
    title from the metadata. Pages without a text layer are OCRed as ``options`` say."""
    options = options or ocr.OcrOptions()
    try:
        pages, title = read_with_pdfium(data, options)
    except ExtractionError:
        raise
    # Parsers of untrusted files raise all kinds of errors; any of them fails this document only.
    except Exception as first:
        try:
            texts, title = read_with_pypdf(data)
        except ExtractionError:
            raise
        except Exception as second:
            raise ExtractionError(
                f"the PDF could not be read: {first} (PDFium); {type(second).__name__}: {second} (pypdf)"
            ) from second
        pages = [_Page(n, [Block(p, page=n) for p in _pdf_paragraphs(t)]) for n, t in enumerate(texts, 1)]
    blocks = [block for page in pages for block in page.blocks]
    return ExtractedDocument(
        title=title.strip() or stem,
        kind="pdf",
        blocks=blocks,
        pages=len(pages),
        ocr_pages=sum(page.ocr for page in pages),
    )


def read_with_pdfium(data: bytes, options: ocr.OcrOptions | None = None) -> tuple[list[_Page], str]:
    """Each page's blocks (read by OCR for a page that needs it) and the metadata title.

    PDFium is called under its lock, one page at a time; a page OCR reads is rendered under it and
    read outside it (OCR takes seconds a page), and its image is dropped at once, so a long scan
    holds one page image at a time (about 25 MB at 300 dpi).
    """
    import pypdfium2
    import pypdfium2.raw

    options = options or ocr.OcrOptions(mode="off")
    with _PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            if exc.err_code == pypdfium2.raw.FPDF_ERR_PASSWORD:
                raise ExtractionError(_ENCRYPTED) from exc
            raise
    try:
        pages = []
        with _PDFIUM_LOCK:
            count = len(document)
        for number in range(1, count + 1):
            with _PDFIUM_LOCK:
                page = document[number - 1]
                try:
                    read = _read_page(page, number, options)
                finally:
                    page.close()
            if read.image is not None:
                lines = ocr.ocr_image(read.image, options)
                read.blocks = ocr.ocr_blocks(lines, page=number, scale=72 / options.dpi)
                read.image, read.ocr = None, True
            pages.append(read)
        with _PDFIUM_LOCK:
            title = document.get_metadata_value("Title")
    finally:
        # Closed here, under the lock: left to the garbage collector it would close in any thread.
        with _PDFIUM_LOCK:
            document.close()
    return pages, title


def _read_page(page: pypdfium2.PdfPage, number: int, options: ocr.OcrOptions) -> _Page:
    textpage = page.get_textpage()
    try:
        height = page.get_height()
        lines = page_lines(textpage, height)
        text = " ".join(line.text for line in lines)
        if options.mode == "always" or (
            options.mode == "auto" and ocr.needs_ocr(text, ocr.image_share(page))
        ):
            image = page.render(scale=options.dpi / 72).to_pil()
            return _Page(number, [], image)
        try:
            tables = pdf_tables.find_tables(textpage, lines, height)
        # A bug in table finding on one odd page costs that page its tables, not the document
        # its boxes (any error here would send the whole file to pypdf).
        except Exception:
            log.warning(
                "table detection failed on page %d; its text is kept as paragraphs", number, exc_info=True
            )
            tables = []
        return _Page(number, _page_blocks(lines, tables, number))
    finally:
        textpage.close()


def page_lines(textpage: pypdfium2.PdfTextPage, height: float) -> list[PdfLine]:
    """The page's non-empty lines with their character ranges and boxes."""
    raw = textpage.get_text_range(0, textpage.count_chars())
    lines: list[PdfLine] = []
    start = 0
    for piece in raw.split("\n"):
        content = piece.removesuffix("\r")
        end = start + len(content)
        # PDFium ends lines with CRLF and writes a hyphen that ends a line as \x02 (U+FFFE in ranges).
        text = " ".join(content.replace("\x02", "-").replace("\ufffe", "-").split())
        if text:
            first = start + len(content) - len(content.lstrip())
            last = start + len(content.rstrip()) - 1
            lines.append(PdfLine(start, end, text, _line_box(textpage, first, last, height)))
        start += len(piece) + 1
    return lines


def _line_box(textpage: pypdfium2.PdfTextPage, first: int, last: int, height: float) -> Box:
    """The box from character ``first`` to ``last`` of one line (their font boxes: a line's
    characters share its baseline), from the page's top-left corner.

    Two characters' boxes rather than PDFium's rectangles of the whole range: 19x faster (0.3
    against 5.6 ms a 10-Q page), and a highlight needs no more.
    """
    left, bottom, right, top = textpage.get_charbox(first, loose=True)
    left2, bottom2, right2, top2 = textpage.get_charbox(last, loose=True)
    return (min(left, left2), height - max(top, top2), max(right, right2), height - min(bottom, bottom2))


def _page_blocks(lines: Sequence[PdfLine], tables: Sequence[pdf_tables.PdfTable], number: int) -> list[Block]:
    """Paragraph blocks of the lines outside ``tables``, and the tables' blocks, in reading order."""
    blocks: list[Block] = []
    position = 0
    for table in sorted(tables, key=lambda t: t.first):
        blocks.extend(_paragraph_blocks(lines[position : table.first], number))
        blocks.append(replace(table.block, page=number))
        position = table.last + 1
    blocks.extend(_paragraph_blocks(lines[position:], number))
    return blocks


def _paragraph_blocks(lines: Sequence[PdfLine], number: int) -> list[Block]:
    """Paragraphs of consecutive lines: broken where PDFium left a blank line, else after a short
    line that ends a sentence."""
    blocks: list[Block] = []
    current: list[PdfLine] = []

    def close() -> None:
        if current:
            blocks.append(_block(current, number))
            current.clear()

    for line in lines:
        # A blank line between two lines shows as more than one CRLF between them in PDFium's text.
        if current and line.start > current[-1].end + 2:
            close()
        current.append(line)
        if line.text.endswith((".", ":", "?", "!")) and len(line.text) < _SHORT_LINE:
            close()
    close()
    return blocks


def _block(lines: Sequence[PdfLine], number: int) -> Block:
    spans: list[Line] = []
    position = 0
    for line in lines:
        spans.append(Line(position, position + len(line.text), line.box))
        position += len(line.text) + 1
    return Block(" ".join(line.text for line in lines), page=number, lines=tuple(spans))


def read_with_pypdf(data: bytes) -> tuple[list[str], str]:
    """Text of each page and the metadata title, read by pypdf."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    # An empty user password opens files that only restrict printing or copying, as PDFium does.
    if reader.is_encrypted and not reader.decrypt(""):
        raise ExtractionError(_ENCRYPTED)
    pages = [page.extract_text() or "" for page in reader.pages]
    title = (reader.metadata.title if reader.metadata else None) or ""
    return pages, title


def _pdf_paragraphs(text: str) -> list[str]:
    """PDF text has a newline per visual line; rebuild paragraphs from blank lines or short lines."""
    found = paragraphs(text)
    if len(found) > 1:
        return [re.sub(r"\s*\n\s*", " ", p) for p in found]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        current.append(line)
        if line.endswith((".", ":", "?", "!")) and len(line) < _SHORT_LINE:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out
