"""Extraction: file bytes to text blocks that keep structure (title, headings, pages).

Pure functions over bytes; the pipeline reads files and runs these in a worker thread. Each format
lives in ``ingestion.formats``; this module picks one by suffix and applies the checks all share.
Every failure is about one document: ``UnsupportedFormatError`` for a type Lore does not read,
``ExtractionError`` for an empty, oversized, encrypted, corrupt or (under a text suffix) binary file.
Whatever the format, the text handed on is cleaned here (control characters, lone surrogates and
non-characters removed from title, headings and blocks), so no extractor can let them through.
"""

from __future__ import annotations

from pathlib import PurePath

from core.errors import ExtractionError, UnsupportedFormatError
from core.settings import IngestionSettings
from ingestion.formats.delimited import extract_csv
from ingestion.formats.document import Block, ExtractedDocument, clean_document, decode, refuse_binary
from ingestion.formats.html import extract_html
from ingestion.formats.office import OFFICE_KINDS, extract_office
from ingestion.formats.pdf import extract_pdf
from ingestion.formats.text import extract_markdown, extract_text

__all__ = ["SUPPORTED_SUFFIXES", "Block", "ExtractedDocument", "extract", "kind_of"]

SUPPORTED_SUFFIXES = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".eml": "email",
}
DEFAULT_MAX_BYTES: int = IngestionSettings.model_fields["max_file_bytes"].default


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


def extract(name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ExtractedDocument:
    """Extract ``data`` (the bytes of file ``name``) into structured blocks.

    ``max_bytes`` (by default, the default of ``ingestion.max_file_bytes``) bounds the file and, for
    DOCX, PPTX and XLSX, what its zip package unpacks to.
    """
    kind = kind_of(name)
    stem = PurePath(name).stem
    if not data or data.isspace():
        raise ExtractionError("the file is empty")
    if len(data) > max_bytes:
        raise ExtractionError(f"the file has {len(data)} bytes, over the limit of {max_bytes}")
    if kind == "pdf":
        doc = extract_pdf(data, stem)
    elif kind in OFFICE_KINDS:
        if kind == "email":
            # An email is text too: random bytes named .eml must not reach the parser as one.
            refuse_binary(data)
        doc = extract_office(kind, data, stem, max_bytes=max_bytes)
    elif kind == "csv":
        doc = extract_csv(decode(data), stem)
    elif kind == "html":
        doc = extract_html(decode(data), stem)
    elif kind == "markdown":
        doc = extract_markdown(decode(data), stem)
    else:
        doc = extract_text(decode(data), stem)
    doc = clean_document(doc, stem)
    if not any(b.text.strip() for b in doc.blocks):
        reason = "a scanned PDF needs OCR, which Lore does not do yet" if kind == "pdf" else "it has no text"
        raise ExtractionError(f"no text could be extracted ({reason})")
    return doc
