"""PDF text with page numbers: PDFium first, pypdf for the files PDFium cannot open.

On the SEC 10-Q test set PDFium (pypdfium2) read about 370 pages/s against pypdf's 19, with the
same text, and opened two files on which pypdf stopped at its parsing limits.
"""

from __future__ import annotations

import io
import re
import threading

from core.errors import ExtractionError
from ingestion.formats.document import Block, ExtractedDocument, paragraphs

_ENCRYPTED = "the PDF is encrypted; Lore cannot read it without the password"
# PDFium is not thread-safe, not even across documents: one call at a time in the whole process.
_PDFIUM_LOCK = threading.Lock()


def extract_pdf(data: bytes, stem: str) -> ExtractedDocument:
    """One block per paragraph, each with its 1-based page number; the title from the metadata."""
    try:
        pages, title = read_with_pdfium(data)
    except ExtractionError:
        raise
    # Parsers of untrusted files raise all kinds of errors; any of them fails this document only.
    except Exception as first:
        try:
            pages, title = read_with_pypdf(data)
        except ExtractionError:
            raise
        except Exception as second:
            raise ExtractionError(
                f"the PDF could not be read: {first} (PDFium); {type(second).__name__}: {second} (pypdf)"
            ) from second
    blocks = [Block(p, page=number) for number, text in enumerate(pages, 1) for p in _pdf_paragraphs(text)]
    return ExtractedDocument(title=title.strip() or stem, kind="pdf", blocks=blocks, pages=len(pages))


def read_with_pdfium(data: bytes) -> tuple[list[str], str]:
    """Text of each page and the metadata title, read by PDFium."""
    import pypdfium2
    import pypdfium2.raw

    with _PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            if exc.err_code == pypdfium2.raw.FPDF_ERR_PASSWORD:
                raise ExtractionError(_ENCRYPTED) from exc
            raise
        try:
            pages = []
            for page in document:
                textpage = page.get_textpage()
                pages.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
            title = document.get_metadata_value("Title")
        finally:
            # Closed here, under the lock: left to the garbage collector they would close in any thread.
            document.close()
    # PDFium ends lines with CRLF and writes a hyphen that ends a line as \x02, joined to the next word.
    return [p.replace("\r\n", "\n").replace("\x02", "-") for p in pages], title


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
        # A line ending a sentence well short of the page width closes a paragraph.
        if line.endswith((".", ":", "?", "!")) and len(line) < 70:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out
