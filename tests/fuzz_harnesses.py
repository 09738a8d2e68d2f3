"""atheris harnesses over every extractor: seeds each builds itself, and the contract they check.

One harness per format, each calling Lore's own entry point, ``ingestion.extract.extract``, as the
pipeline does. The contract: a file may fail with ``ExtractionError`` or ``UnsupportedFormatError``
(a clean failure of that one document); any other exception, a hang or a crash is a finding.

Used by ``bench/fuzz_extractors.py`` (the long run) and ``tests/ingestion/test_fuzz_smoke.py`` (a
few hundred executions each in CI). libFuzzer owns the process it runs in, so each harness runs
in its own: ``python -m tests.fuzz_harnesses KIND LIBFUZZER_ARGS... CORPUS_DIR``
(:func:`worker_command`).
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Instrumented for coverage feedback: Lore's extractors and the pure-Python parsers under them.
INSTRUMENTED = ("ingestion", "bs4", "email", "csv", "pypdf", "docx", "pptx", "openpyxl", "unstructured")


def _text_seeds() -> list[bytes]:
    return [
        b"Leave policy\n\nStaff get twenty days of paid leave.\r\n\r\nCarry over: five days.\n",
        "Caf\u00e9 cr\u00e8me \u2014 \u00fcber \u65e5\u672c\n\n\tTabbed  spaces\n".encode(),
        b"\xef\xbb\xbfBOM first line\n\n\n\nlast\n",
    ]


def _markdown_seeds() -> list[bytes]:
    return [
        b"# Handbook\n\nIntro text.\n\n## Leave\n\nTwenty days.\n\n### Carry over ###\n\nFive days.\n",
        b"# Code\n\n```python\n# not a heading\nprint(1)\n```\n\n~~~\nfenced\n~~~\n\n## After\n\ntext\n",
        b"Title\r\n=====\r\n\r\n- item one\r\n- item two\r\n\r\n#### Deep\r\nbody\r\n",
    ]


def _csv_seeds() -> list[bytes]:
    return [
        b'name,days,note\nalice,20,"says ""hi"""\nbob,25,senior\n',
        b"Quarterly report\nregion;q1;q2\nnorth;1,5;2\nsouth;3;4\n\ntotal;4,5;6\n",
        b"a\tb\tc\n1\t2\t3\n'x'\t\"y\nz\"\t\n",
        b"k|v\nx|1\ny|2|extra\n",
    ]


def _html_seeds() -> list[bytes]:
    return [
        b"<!doctype html><html><head><title>Handbook</title><style>p{}</style></head><body>"
        b"<nav><a href='/'>Home</a></nav><main><h1>Leave<a class='headerlink' href='#x'>\xc2\xb6</a></h1>"
        b"<p>Twenty days.</p><h2>Carry over</h2><ul><li>Five <b>days</b></li><li><p>nested</p></li></ul>"
        b"<table><tr><th>Grade</th><th>Days</th></tr><tr><td>Senior</td><td>25</td></tr></table>"
        b"<dl><dt>Term</dt><dd>Definition</dd></dl><pre>code\n  block</pre></main>"
        b"<footer>c</footer><script>x()</script></body></html>",
        b"<div role='navigation'>menu</div><article><h3>Only h3</h3><blockquote>quoted</blockquote>"
        b"<p>text &amp; entities &#x41; &bogus;</p></article>",
        b"<html><body><h1></h1><p>no main</p><h4>x</h4><template><p>t</p></template></body></html>",
    ]


def _email_seeds() -> list[bytes]:
    from email.message import EmailMessage

    plain = EmailMessage()
    plain["Subject"] = "Leave policy"
    plain["From"] = "HR <hr@example.com>"
    plain["To"] = "staff@example.com"
    plain["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    plain.set_content("Staff get twenty days of paid leave each year.\n\nFive carry over.\n")
    both = EmailMessage()
    both["Subject"] = "=?utf-8?q?Caf=C3=A9_news?="
    both["From"] = "a@example.com"
    both["Cc"] = "b@example.com, c@example.com"
    both.set_content("Plain part.\n")
    both.add_alternative("<html><body><h1>News</h1><p>HTML part.</p></body></html>", subtype="html")
    both.add_attachment(b"attached bytes", maintype="application", subtype="octet-stream", filename="a.bin")
    return [plain.as_bytes(), both.as_bytes()]


def _pdf_seeds() -> list[bytes]:
    from fpdf import FPDF

    seeds = []
    for title, pages in (
        ("Handbook", ["Leave\n\nStaff get twenty days of paid leave.", "Expenses: receipts over ten euros."]),
        ("", ["A line that is long enough to fill most of the width of the page and then wraps.\nShort."]),
    ):
        pdf = FPDF()
        # Uncompressed content streams: mutations land in the text operators, not in deflate data.
        pdf.set_compression(False)
        pdf.set_font("Helvetica", size=12)
        if title:
            pdf.set_title(title)
        for text in pages:
            pdf.add_page()
            pdf.multi_cell(0, 8, text)
        seeds.append(bytes(pdf.output()))
    return seeds


def _docx_seeds() -> list[bytes]:
    import docx

    document = docx.Document()
    document.add_heading("Employee Handbook", level=0)
    document.add_heading("Leave", level=1)
    document.add_paragraph("Staff get twenty days of paid leave each year.")
    document.add_paragraph("Five days carry over.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Grade", (0, 1): "Days", (1, 0): "Senior", (1, 1): "25"}.items():
        table.cell(row, col).text = text
    document.add_page_break()
    document.add_heading("Expenses", level=2)
    document.add_paragraph("Receipts are required.")
    out = io.BytesIO()
    document.save(out)
    return [out.getvalue()]


def _pptx_seeds() -> list[bytes]:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Quarterly review"
    slide.placeholders[1].text = "Numbers and plans"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Leave"
    body = slide.placeholders[1].text_frame
    body.text = "Twenty days"
    body.add_paragraph().text = "Five carry over"
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (row, col), text in {(0, 0): "Grade", (0, 1): "Days", (1, 0): "Senior", (1, 1): "25"}.items():
        rows.cell(row, col).text = text
    out = io.BytesIO()
    deck.save(out)
    return [out.getvalue()]


def _xlsx_seeds() -> list[bytes]:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leave"
    for row in (("Grade", "Days", "Note"), ("Senior", 25, "carry 5"), ("Junior", 20.5, None)):
        sheet.append(row)
    other = book.create_sheet("Expenses")
    other.append(("Item", "Limit"))
    other.append(("Taxi", "=1+2"))
    out = io.BytesIO()
    book.save(out)
    return [out.getvalue()]


@dataclass(frozen=True)
class Harness:
    """One extractor under fuzzing: the file name it is extracted as, and how to build its seeds."""

    kind: str
    filename: str
    seeds: Callable[[], list[bytes]]
    # OOXML packages: mutate the XML inside the zip, so inputs get past the zip layer to the parsers.
    zipped: bool = False


HARNESSES: dict[str, Harness] = {
    h.kind: h
    for h in (
        Harness("text", "fuzz.txt", _text_seeds),
        Harness("markdown", "fuzz.md", _markdown_seeds),
        Harness("csv", "fuzz.csv", _csv_seeds),
        Harness("html", "fuzz.html", _html_seeds),
        Harness("email", "fuzz.eml", _email_seeds),
        Harness("pdf", "fuzz.pdf", _pdf_seeds),
        Harness("docx", "fuzz.docx", _docx_seeds, zipped=True),
        Harness("pptx", "fuzz.pptx", _pptx_seeds, zipped=True),
        Harness("xlsx", "fuzz.xlsx", _xlsx_seeds, zipped=True),
    )
}


def check_one(harness: Harness, data: bytes) -> None:
    """Extract ``data`` as ``harness``'s format; anything but a clean per-document failure raises."""
    from core.errors import ExtractionError, UnsupportedFormatError
    from ingestion.extract import extract

    with contextlib.suppress(ExtractionError, UnsupportedFormatError):
        extract(harness.filename, data)


def mutate_package(data: bytes, max_size: int, seed: int) -> bytes:
    """Mutate one member of a zip package and zip it again; raw bytes when ``data`` is not a zip."""
    import atheris

    rng = random.Random(seed)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = [(info.filename, package.read(info)) for info in package.infolist()]
    except Exception:
        members = []
    # Now and then a raw mutation too: damaged packages are inputs as well.
    if not members or rng.random() < 0.05:
        return bytes(atheris.Mutate(data, max_size))
    index = rng.randrange(len(members))
    name, body = members[index]
    members[index] = (name, bytes(atheris.Mutate(body, max(2 * len(body), 256))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for member, content in members:
            package.writestr(member, content)
    result = out.getvalue()
    return result if len(result) <= max_size else bytes(atheris.Mutate(data, max_size))


def write_seeds(harness: Harness, folder: Path) -> int:
    """Write ``harness``'s seeds into ``folder`` (a libFuzzer corpus); the largest seed's size."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = harness.seeds()
    for number, seed in enumerate(seeds):
        (folder / f"seed-{number}").write_bytes(seed)
    return max(len(seed) for seed in seeds)


def worker_command(
    kind: str, *, corpus: Path, findings: Path, seconds: float, runs: int | None, timeout_s: int
) -> list[str]:
    """The command that fuzzes ``kind`` from the seeds it writes into ``corpus``.

    Inputs that break the contract are written into ``findings``; the worker stops at the first
    one, after ``seconds``, or after ``runs`` executions.
    """
    largest = write_seeds(HARNESSES[kind], corpus)
    args = [
        f"-max_total_time={max(1, int(seconds))}",
        f"-timeout={timeout_s}",
        f"-max_len={max(4096, 2 * largest)}",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
        f"-artifact_prefix={findings}/",
    ]
    if HARNESSES[kind].zipped:
        # Whole packages from the first input: libFuzzer's slow growth of the length would cap the
        # zip mutator below a package's size.
        args.append("-len_control=0")
    if runs is not None:
        args.append(f"-runs={runs}")
    return [sys.executable, "-m", "tests.fuzz_harnesses", kind, *args, str(corpus)]


def fuzz(kind: str, libfuzzer_args: list[str]) -> None:
    """Fuzz one harness with atheris in this process (libFuzzer ends the process when done)."""
    import atheris

    harness = HARNESSES[kind]
    seeds = harness.seeds()
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        import ingestion.extract  # noqa: F401

        # The formats import their parsers on first use: extract the seeds here so they are
        # imported, and instrumented, now.
        for seed in seeds:
            check_one(harness, seed)

    def test_one_input(data: bytes) -> None:
        check_one(harness, data)

    options: dict[str, object] = {}
    if harness.zipped:
        options["custom_mutator"] = mutate_package
    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input, **options)
    atheris.Fuzz()


if __name__ == "__main__":
    fuzz(sys.argv[1], sys.argv[2:])
