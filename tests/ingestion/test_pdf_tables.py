"""Tables in PDF pages: a financial statement laid out as 10-Qs print one (a label column, right-
aligned figures with $ signs and negatives in parentheses, a label that wraps, a header of three
lines with a heading over two columns) comes out as one Markdown table block; prose around it
stays text."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fpdf import FPDF

from ingestion.formats import ocr
from ingestion.formats.document import Block, BlockKind
from ingestion.formats.pdf import PdfLine, extract_pdf
from ingestion.formats.pdf_tables import find_tables, is_figure

WIDTH, HEIGHT = 612.0, 792.0
COLUMNS = [(330.0, 400.0), (430.0, 500.0)]
ROWS: list[tuple[str, tuple[str, str] | None]] = [
    ("Net sales:", None),
    ("Products", ("$ 63,355", "$ 63,948")),
    ("Services", ("19,604", "17,486")),
    ("Other income/(expense), net", ("(10)", "243")),
    # A label that wraps: its first line has no figures.
    ("Income before provision for", None),
    ("income taxes", ("23,066", "-")),
    ("Net income", ("$ 19,442", "$ 21,744")),
]
INTRO = "Revenue grew in the quarter as more devices were sold. The statements below are unaudited."
PROSE = [f"Sales rose to {n},234 from {n},100 and then to {n},300" for n in range(1, 6)]


def _statement_pdf() -> bytes:
    pdf = FPDF(unit="pt", format="letter")
    pdf.set_font("Helvetica", size=9)

    def text(x: float, y: float, content: str, width: float = 0, align: str = "L") -> None:
        pdf.set_xy(x, y)
        pdf.cell(width, 10, content, align=align)

    pdf.add_page()
    pdf.set_xy(40, 60)
    pdf.multi_cell(530, 12, INTRO)
    text(0, 110, "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS", WIDTH, "C")
    text(0, 122, "(In millions, except per share amounts)", WIDTH, "C")
    text(COLUMNS[0][0], 146, "Three Months Ended", COLUMNS[1][1] - COLUMNS[0][0], "C")
    for (x0, x1), (day, year) in zip(COLUMNS, [("June 25,", "2022"), ("June 26,", "2021")], strict=True):
        text(x0, 158, day, x1 - x0, "R")
        text(x0, 168, year, x1 - x0, "R")
    y = 184.0
    for label, figures in ROWS:
        text(40, y, label)
        for (x0, x1), figure in zip(COLUMNS, figures or (), strict=False):
            dollar, _, number = figure.rpartition(" ")
            if dollar:
                text(x0 - 20, y, dollar)
            text(x0, y, number, x1 - x0, "R")
        y += 12
    pdf.set_xy(40, y + 20)
    pdf.multi_cell(530, 12, "See the notes to the statements.")
    # A page of prose whose lines end in figures: it must not read as a table.
    pdf.add_page()
    for n, line in enumerate(PROSE):
        text(40, 60 + 12 * n, line)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return extract_pdf(_statement_pdf(), "statement", ocr.OcrOptions(mode="off")).blocks


def _table(blocks: list[Block]) -> Block:
    tables = [b for b in blocks if b.kind is BlockKind.TABLE]
    assert len(tables) == 1
    return tables[0]


def test_a_statement_becomes_one_table_with_its_header_caption_and_rows(blocks: list[Block]) -> None:
    table = _table(blocks)
    assert table.page == 1
    assert table.text.split("\n") == [
        "CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS",
        "(In millions, except per share amounts)",
        "|  | Three Months Ended June 25, 2022 | Three Months Ended June 26, 2021 |",
        "| --- | --- | --- |",
        "| Net sales: |  |  |",
        "| Products | $63,355 | $63,948 |",
        "| Services | 19,604 | 17,486 |",
        "| Other income/(expense), net | (10) | 243 |",
        "| Income before provision for income taxes | 23,066 | - |",
        "| Net income | $19,442 | $21,744 |",
    ]


def test_the_prose_around_a_table_stays_text(blocks: list[Block]) -> None:
    page_one = [b for b in blocks if b.page == 1]
    assert [b.kind for b in page_one] == [BlockKind.TEXT, BlockKind.TABLE, BlockKind.TEXT]
    assert page_one[0].text == INTRO
    assert page_one[2].text == "See the notes to the statements."


def test_a_page_of_prose_ending_in_figures_has_no_table(blocks: list[Block]) -> None:
    page_two = [b for b in blocks if b.page == 2]
    assert [b.kind for b in page_two] == [BlockKind.TEXT]
    assert page_two[0].text == " ".join(PROSE)


def test_table_lines_index_whole_markdown_lines_and_sit_on_the_page(blocks: list[Block]) -> None:
    table = _table(blocks)
    markdown = table.text.split("\n")
    spans = [table.text[line.start : line.end] for line in table.lines]
    # Every Markdown line but the rule has a place on the page; each span is one whole line.
    assert spans == [m for m in markdown if m != "| --- | --- | --- |"]
    for line in table.lines:
        assert line.start == 0 or table.text[line.start - 1] == "\n"
        assert line.end == len(table.text) or table.text[line.end] == "\n"
        left, top, right, bottom = line.box
        assert 0 <= left < right <= WIDTH and 0 <= top < bottom <= HEIGHT
    header = table.lines[2].box  # the union of the three header lines
    assert header[1] < 150 < 170 < header[3]
    rows = [line.box for line in table.lines[3:]]
    assert all(a[3] <= b[1] for a, b in itertools.pairwise(rows))  # top to bottom


class _NoPdfium:
    """A text page that fails if asked anything: pages of prose must not reach PDFium."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"PDFium was asked for {name}")


def test_pages_with_few_lines_ending_in_figures_are_not_measured() -> None:
    lines = [
        PdfLine(0, 33, "Revenue was up 12% in the quarter", (40, 60, 300, 70)),
        PdfLine(34, 64, "from 1,234 a year ago to 1,300", (40, 72, 300, 82)),
        PdfLine(65, 93, "Operating income 5,000 4,000", (40, 84, 300, 94)),
        PdfLine(94, 118, "as the table shows below.", (40, 96, 300, 106)),
    ]
    assert find_tables(_NoPdfium(), lines, HEIGHT) == []


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("63,355", True),
        ("$63,355", True),
        ("(1,897)", True),
        ("$(3,000)", True),
        ("12.5%", True),
        ("—", True),
        ("5.5 pts", True),
        ("2022,", False),
        ("June 25,", False),
        ("$15.3B", False),
    ],
)
def test_figures_are_numbers_as_statements_print_them(text: str, figure: bool) -> None:
    assert is_figure(text) is figure
