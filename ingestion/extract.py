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
from ingestion.formats.image import extract_image
from ingestion.formats.ocr import OcrOptions
from ingestion.formats.office import OFFICE_KINDS, extract_office
from ingestion.formats.pdf import extract_pdf
from ingestion.formats.text import extract_markdown, extract_text

__all__ = ["SUPPORTED_SUFFIXES", "Block", "ExtractedDocument", "content_type", "extract", "kind_of"]

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
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
DEFAULT_MAX_BYTES: int = IngestionSettings.model_fields["max_file_bytes"].default


# What GET /v1/documents/{id}/file serves each format as.
_CONTENT_TYPES = {
    "pdf": "application/pdf",
    "markdown": "text/markdown",
    "text": "text/plain",
    "html": "text/html",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "email": "message/rfc822",
}
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


def content_type(name: str) -> str:
    """The media type of a file Lore reads, from its suffix (``application/octet-stream`` else)."""
    suffix = PurePath(name).suffix.lower()
    kind = SUPPORTED_SUFFIXES.get(suffix)
    if kind == "image":
        return _IMAGE_TYPES[suffix]
    return _CONTENT_TYPES.get(kind or "", "application/octet-stream")


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


def extract(
    name: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, ocr: OcrOptions | None = None
) -> ExtractedDocument:
    """Extract ``data`` (the bytes of file ``name``) into structured blocks.

    ``max_bytes`` (by default, the default of ``ingestion.max_file_bytes``) bounds the file and, for
    DOCX, PPTX and XLSX, what its zip package unpacks to. ``ocr`` (by default, ``ingestion.ocr``'s
    defaults) says when scanned PDF pages and images are read by OCR.
    """
    ocr = ocr or OcrOptions()
    kind = kind_of(name)
    stem = PurePath(name).stem
    if not data or data.isspace():
        raise ExtractionError("the file is empty")
    if len(data) > max_bytes:
        raise ExtractionError(f"the file has {len(data)} bytes, over the limit of {max_bytes}")
    if kind == "pdf":
        doc = extract_pdf(data, stem, ocr)
    elif kind == "image":
        doc = extract_image(data, stem, ocr)
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
        raise ExtractionError(f"no text could be extracted ({_why_empty(doc, ocr)})")
    return doc


def _why_empty(doc: ExtractedDocument, ocr: OcrOptions) -> str:
    if doc.ocr_pages:
        return f"OCR found no text on its {doc.ocr_pages} scanned page{'s' if doc.ocr_pages != 1 else ''}"
    if doc.kind == "pdf":
        if ocr.mode == "off":
            return "it has no text layer, as a scan has not, and ingestion.ocr is off"
        return "it has no text layer and no page image to read"
    return "it has no text"
