"""Extraction hands on only text a database stores: NUL and other control characters, lone
surrogates and non-characters are gone from every format's title, headings and blocks; binary files
under a text suffix fail with their reason instead of being read as junk."""

from __future__ import annotations

import codecs
import random
from email.message import EmailMessage

import pytest
from fpdf import FPDF

import ingestion.extract
from core.errors import ExtractionError
from ingestion.extract import Block, ExtractedDocument, extract

# Every character the database or the embedder must not see: C0 and C1 controls (but tab, newline
# and carriage return), DEL, a lone surrogate and Unicode non-characters.
BAD = "\x00\x01\x08\x1b\x7f\x85\x9f\ud800\ufdd0\ufffe\U0010ffff"


def assert_clean(doc: ExtractedDocument) -> None:
    texts = [doc.title, *(b.text for b in doc.blocks), *(h for b in doc.blocks for h in b.headings)]
    for text in texts:
        assert not any(ch in BAD for ch in text), repr(text)


def test_a_nul_in_a_markdown_title_is_dropped_and_the_file_still_read() -> None:
    doc = extract("evil.md", b"# Evil\x00Title\n\ntext\n")

    assert doc.title == "EvilTitle"
    assert [(b.text, b.headings) for b in doc.blocks] == [("# EvilTitle\ntext", ("EvilTitle",))]


# Enough ordinary text around the stray characters that the file is still text, not binary.
PROSE = "Ordinary words of an ordinary note, as many as a short page holds. " * 4


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", f"Plain{BAD} notes.\n\n{PROSE}\x0c{PROSE}\n".encode("utf-8", "surrogatepass")),
        (
            "guide.md",
            f"# Gui{BAD}de\n\n## Sec\x00tion\n\nRun\x00 make. {PROSE}\n".encode("utf-8", "surrogatepass"),
        ),
        ("rows.csv", f"city,popu\x00lation\nZ\x01rich,421000\n{PROSE},1\n".encode()),
        (
            "page.html",
            f"<html><title>Pa\x00ge</title><body><h1>He\x1bad</h1><p>Hel\x00lo. {PROSE}</p></body>".encode(),
        ),
    ],
)
def test_text_formats_lose_control_characters_everywhere(name: str, data: bytes) -> None:
    doc = extract(name, data)

    assert_clean(doc)
    assert doc.blocks


def test_tab_newline_and_carriage_return_are_kept_and_form_feed_separates() -> None:
    doc = extract("notes.txt", b"a\tb\r\nc\x0cd\n")

    assert [b.text for b in doc.blocks] == ["a b\nc\nd"]


def test_a_pdf_whose_title_holds_nul_gets_a_clean_title() -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.set_title("Evil\x00Title")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Alpha facts are here.")

    doc = extract("report.pdf", bytes(pdf.output()))

    assert doc.title == "EvilTitle"
    assert_clean(doc)


def test_office_and_email_results_are_cleaned_by_the_same_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The formats unstructured reads go through the one cleaning step too (stood in for here:
    unstructured takes seconds to import, and test_formats runs it for real)."""
    raw = ExtractedDocument(
        title=f"Sub{BAD}ject",
        kind="email",
        blocks=[Block(f"Bo{BAD}dy", page=1, headings=(f"Hea{BAD}d",)), Block("\x00\x01")],
        pages=1,
    )
    monkeypatch.setattr(ingestion.extract, "extract_office", lambda *args, **kwargs: raw)

    doc = extract("release.eml", make_eml())

    assert (doc.title, doc.kind, doc.pages) == ("Subject", "email", 1)
    # a block left empty by cleaning is dropped
    assert [(b.text, b.page, b.headings) for b in doc.blocks] == [("Body", 1, ("Head",))]


def test_a_file_of_nothing_but_control_characters_has_no_text() -> None:
    with pytest.raises(ExtractionError, match="no text could be extracted"):
        extract("nothing.md", b"\x00\x01\x02\n")


def make_eml() -> bytes:
    message = EmailMessage()
    message["Subject"] = "Plan"
    message.set_content("Hi team.\n")
    return bytes(message)


def random_bytes(size: int, seed: int = 14) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("name", ["junk.md", "junk.txt", "junk.csv", "junk.html", "junk.eml"])
@pytest.mark.parametrize("size", [64, 4096, 200_000])
def test_random_bytes_under_a_text_suffix_fail_as_binary(name: str, size: int) -> None:
    with pytest.raises(ExtractionError, match="binary"):
        extract(name, random_bytes(size))


def test_an_image_renamed_to_md_fails_as_binary() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
    with pytest.raises(ExtractionError, match="binary"):
        extract("logo.md", png + random_bytes(2000))


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        # Windows-1252 and Latin-1 text: a few bytes that are not UTF-8 are no sign of binary
        ("cities.csv", "city\nZürich\nGenève\n".encode("cp1252"), "Zürich"),
        ("notes.txt", ("Crème brûlée à la française. " * 40).encode("latin-1"), "Crème brûlée"),
        # UTF-16 with its byte-order mark (Notepad's "Unicode") is text, though half its bytes are NUL
        ("notes.txt", codecs.BOM_UTF16_LE + "Hello there, Zoë.\n".encode("utf-16-le"), "Zoë"),
        ("notes.md", codecs.BOM_UTF16_BE + "# Hello\n\nthere\n".encode("utf-16-be"), "there"),
        # a terminal log keeps its text once its colour escapes are gone
        ("build.txt", b"\x1b[32mok\x1b[0m step one\n\x1b[31mfail\x1b[0m step two\n", "step two"),
    ],
)
def test_text_in_other_encodings_is_still_text(name: str, data: bytes, expected: str) -> None:
    doc = extract(name, data)

    assert expected in "\n".join(b.text for b in doc.blocks)
    assert_clean(doc)
