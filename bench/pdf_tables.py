"""PDF tables: Lore's detector (ingestion/formats/pdf_tables.py) against pdfplumber's, on SEC 10-Q pages.

Methods, each on the same pages, each timed from the open page to its tables:
- pdfplumber: ``page.extract_tables()`` (lines strategy, its default: ruling lines);
- pdfplumber-text: ``page.extract_tables({"vertical_strategy": "text", "horizontal_strategy": "text"})``;
- lore: PDFium's text page, ``ingestion.formats.pdf.page_lines`` and ``pdf_tables.find_tables``
  (what extraction runs on every page).

What is measured. The truth comes from the text layer, not from any method: each PDFium line that
reads as a label followed by two figures or more ("Products $ 63,355 $ 63,948 ...") is a row. Per
method, on the table pages:
- figures kept: the share of those rows' figures found in a table row whose first cell is the
  row's label and whose other cells hold figures only;
- rows intact: the share of those rows found whole: first cell the label, then exactly its figures,
  in order;
- aligned: the share of those rows found whole with their figures in the same columns as the
  other whole rows of their table with as many figures (a figure under its column's header);
- period headers (on the statements' pages, where every figure column is a period): the share of
  figure columns, in the table with most figures on the page, whose header (the rows above the
  first figure row) names a date: a month or "ended", and a year.
On the text pages, any table found is a false one.

    pip install -e '.[bench]'
    python bench/pdf_tables.py                       # the default sample, about a minute
    python bench/pdf_tables.py --pages "2022 Q3 AAPL.pdf:4,5" "2023 Q1 MSFT.pdf:19" --text-pages ""
    python bench/pdf_tables.py --sample 40          # random pages of all 20 filings, a few minutes
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOCS = REPO.parent / "shared" / "datasets" / "docugami_sec10q" / "docs"
# Statements (operations, balance sheets) and notes' tables, spread over the five filers and four
# quarters, and pages of prose (risk factors, legal proceedings).
STATEMENTS = [
    "2022 Q3 AAPL.pdf:4",
    "2023 Q3 AAPL.pdf:6",
    "2022 Q3 AMZN.pdf:4",
    "2023 Q2 AMZN.pdf:6",
    "2022 Q3 INTC.pdf:5",
    "2023 Q1 INTC.pdf:8",
    "2022 Q3 MSFT.pdf:3",
    "2023 Q2 MSFT.pdf:5",
    "2022 Q3 NVDA.pdf:3",
    "2023 Q1 NVDA.pdf:5",
]
# Notes' tables: debt (maturities, rates) and intangible assets (columns of amounts under one date).
TABLE_PAGES = [*STATEMENTS, "2022 Q3 AMZN.pdf:15", "2023 Q1 MSFT.pdf:19"]
TEXT_PAGES = ["2022 Q3 AMZN.pdf:35", "2023 Q1 MSFT.pdf:46", "2023 Q2 NVDA.pdf:37", "2022 Q3 INTC.pdf:42"]

Table = list[list[str]]  # rows of cells
_FIGURE = re.compile(r"\(?[-–]?\(?\d(?:[\d,]*\d)?(?:\.\d+)?\)?%?\)?|[-–—]+")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_DATE_WORD = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\bended\b", re.IGNORECASE
)


@dataclass
class Tally:
    """What one method found and how long it took."""

    tables: int = 0
    rows: int = 0
    false_tables: int = 0
    seconds: float = 0.0
    pages: int = 0
    truth_figures: int = 0
    kept_figures: int = 0
    truth_rows: int = 0
    intact_rows: int = 0
    aligned_rows: int = 0
    header_shares: list[float] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help="folder of the 10-Q PDFs")
    parser.add_argument(
        "--pages", nargs="*", default=TABLE_PAGES, help='table pages, "FILE.pdf:PAGE[,PAGE...]" (1-based)'
    )
    parser.add_argument("--text-pages", nargs="*", default=TEXT_PAGES, help="pages without tables, same form")
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="instead, N random pages with three label-and-figures rows or more, and N/4 with none",
    )
    parser.add_argument("--seed", type=int, default=0, help="of --sample")
    parser.add_argument("--show", action="store_true", help="print each method's tables of the first page")
    args = parser.parse_args()

    if args.sample:
        table_pages, text_pages = _sample(args.docs, args.sample, args.seed)
    else:
        table_pages = _pages([p for p in args.pages if p])
        text_pages = _pages([p for p in args.text_pages if p])
    truth = {key: _truth_rows(args.docs, *key) for key in table_pages}
    methods: dict[str, Callable[[Path, str, list[int]], dict[int, list[Table]]]] = {
        "pdfplumber": _pdfplumber_lines,
        "pdfplumber-text": _pdfplumber_text,
        "lore": _lore,
    }
    print(
        f"{len(table_pages)} table pages, {len(text_pages)} text pages; "
        f"{sum(len(r) for r in truth.values())} label-and-figures rows in their text layer\n"
    )
    tallies: dict[str, Tally] = {}
    for name, method in methods.items():
        tally = tallies[name] = Tally()
        for pages, is_table in ((table_pages, True), (text_pages, False)):
            for (file, number), found in _run(method, args.docs, pages, tally).items():
                tables = [t for t in found if t]
                if not is_table:
                    tally.false_tables += len(tables)
                    continue
                tally.tables += len(tables)
                tally.rows += sum(len(t) for t in tables)
                _score(tally, truth[(file, number)], tables, f"{file}:{number}" in STATEMENTS)
                if args.show and (file, number) == next(iter(table_pages)):
                    for t in tables:
                        print(f"--- {name}: {file} p{number}")
                        print("\n".join(" | ".join(row) for row in t[:8]))
    _print(tallies)


def _pages(specs: Sequence[str]) -> dict[tuple[str, int], None]:
    """``"FILE:1,2"`` specs as (file, page) keys, in order, without repeats."""
    keys: dict[tuple[str, int], None] = {}
    for spec in specs:
        file, _, numbers = spec.rpartition(":")
        for number in numbers.split(","):
            keys[(file, int(number))] = None
    return keys


def _sample(docs: Path, n: int, seed: int) -> tuple[dict[tuple[str, int], None], dict[tuple[str, int], None]]:
    """``n`` random pages with three label-and-figures rows or more, and ``n // 4`` with none."""
    import pypdfium2

    tables: list[tuple[str, int]] = []
    texts: list[tuple[str, int]] = []
    for path in sorted(docs.glob("*.pdf")):
        document = pypdfium2.PdfDocument(path)
        count = len(document)
        document.close()
        for number in range(1, count + 1):
            rows = len(_truth_rows(docs, path.name, number))
            if rows >= 3:
                tables.append((path.name, number))
            elif rows == 0:
                texts.append((path.name, number))
    pick = random.Random(seed)
    return (
        dict.fromkeys(sorted(pick.sample(tables, min(n, len(tables))))),
        dict.fromkeys(sorted(pick.sample(texts, min(n // 4, len(texts))))),
    )


def _run(
    method: Callable[[Path, str, list[int]], dict[int, list[Table]]],
    docs: Path,
    pages: dict[tuple[str, int], None],
    tally: Tally,
) -> dict[tuple[str, int], list[Table]]:
    by_file: dict[str, list[int]] = {}
    for file, number in pages:
        by_file.setdefault(file, []).append(number)
    out: dict[tuple[str, int], list[Table]] = {}
    for file, numbers in by_file.items():
        started = time.perf_counter()
        found = method(docs, file, numbers)
        tally.seconds += time.perf_counter() - started
        tally.pages += len(numbers)
        out.update({(file, n): tables for n, tables in found.items()})
    return out


def _pdfplumber(
    docs: Path, file: str, numbers: list[int], settings: dict[str, str] | None
) -> dict[int, list[Table]]:
    import pdfplumber

    out: dict[int, list[Table]] = {}
    with pdfplumber.open(docs / file) as pdf:
        for number in numbers:
            page = pdf.pages[number - 1]
            tables = page.extract_tables(settings) if settings else page.extract_tables()
            out[number] = [[[_tidy(c) for c in row] for row in t] for t in tables]
            page.close()
    return out


def _pdfplumber_lines(docs: Path, file: str, numbers: list[int]) -> dict[int, list[Table]]:
    return _pdfplumber(docs, file, numbers, None)


def _pdfplumber_text(docs: Path, file: str, numbers: list[int]) -> dict[int, list[Table]]:
    return _pdfplumber(docs, file, numbers, {"vertical_strategy": "text", "horizontal_strategy": "text"})


def _lore(docs: Path, file: str, numbers: list[int]) -> dict[int, list[Table]]:
    import pypdfium2

    from ingestion.formats.pdf import page_lines
    from ingestion.formats.pdf_tables import find_tables

    out: dict[int, list[Table]] = {}
    document = pypdfium2.PdfDocument(docs / file)
    try:
        for number in numbers:
            page = document[number - 1]
            textpage = page.get_textpage()
            height = page.get_height()
            tables = find_tables(textpage, page_lines(textpage, height), height)
            out[number] = [_markdown_rows(t.block.text) for t in tables]
            textpage.close()
            page.close()
    finally:
        document.close()
    return out


def _markdown_rows(text: str) -> Table:
    """The header and body rows of a Markdown table block (its caption and rule left out)."""
    lines = [line for line in text.split("\n") if line.startswith("|")]
    rows = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return [rows[0], *rows[2:]] if len(rows) > 1 else rows


def _tidy(cell: str | None) -> str:
    return " ".join((cell or "").split())


def _truth_rows(docs: Path, file: str, number: int) -> list[tuple[str, list[str]]]:
    """The page's text lines that read as a label and two figures or more, as (label, figures)."""
    import pypdfium2

    from ingestion.formats.pdf import page_lines

    document = pypdfium2.PdfDocument(docs / file)
    try:
        page = document[number - 1]
        textpage = page.get_textpage()
        lines = page_lines(textpage, page.get_height())
        textpage.close()
        page.close()
    finally:
        document.close()
    rows = []
    for line in lines:
        words = [w for w in re.sub(r"\s+([%)])", r"\1", line.text).split() if w != "$"]
        figures: list[str] = []
        while words and _is_figure(words[-1]):
            figures.insert(0, _figure(words.pop()))
        label = " ".join(words)
        if (
            len(figures) >= 2
            and re.search(r"[A-Za-z]", label)
            and not all(_YEAR.fullmatch(f) for f in figures)
        ):
            rows.append((label, figures))
    return rows


def _is_figure(text: str) -> bool:
    return bool(_FIGURE.fullmatch(text.replace("$", "").replace(" ", "")))


def _figure(text: str) -> str:
    """A figure as compared: no $ sign, spaces or thousands commas, one kind of dash."""
    text = text.replace("$", "").replace(" ", "").replace(",", "")
    return "—" if re.fullmatch(r"[-–—]+", text) else text


def _split(row: list[str]) -> tuple[str, list[str], tuple[int, ...]] | None:
    """A table row as (label, figures, the cell of each figure): the first cell must be a label,
    and every word of the other cells a figure ("$" signs, which pdfplumber may leave in cells of
    their own, aside)."""
    if not row or not row[0] or _is_figure(row[0]):
        return None
    words = [(k, w) for k, c in enumerate(row[1:], 1) for w in c.split() if w != "$"]
    if not words or not all(_is_figure(w) for _, w in words):
        return None
    return row[0], [_figure(w) for _, w in words], tuple(k for k, _ in words)


def _key(text: str) -> str:
    return re.sub(r"[\s$,]", "", text).lower()


def _score(tally: Tally, truth: list[tuple[str, list[str]]], tables: list[Table], statement: bool) -> None:
    found = [(n, *split) for n, t in enumerate(tables) for row in t if (split := _split(row))]
    placements: list[tuple[int, int, tuple[int, ...]]] = []
    for label, figures in truth:
        tally.truth_rows += 1
        tally.truth_figures += len(figures)
        intact: tuple[int, int, tuple[int, ...]] | None = None
        best = 0
        for table, found_label, found_figures, cells in found:
            # A line of the text layer may hold the end of a label wrapped from the line above
            # ("and 15,943,425 shares issued"), or a label's last word that reads as a figure
            # ("$633", "2022)"): the table's row then has the longer label.
            for absorbed in (0, 1):
                if not _key(found_label).endswith(_key(" ".join([label, *figures[:absorbed]]))):
                    continue
                rest = figures[absorbed:]
                if found_figures == rest and intact is None:
                    intact = (table, len(rest), cells)
                best = max(best, absorbed + sum((Counter(rest) & Counter(found_figures)).values()))
        if intact is not None:
            tally.intact_rows += 1
            placements.append(intact)
        tally.kept_figures += best
    # Rows with as many figures in one table should have them in the same columns.
    modal: dict[tuple[int, int], tuple[int, ...]] = {}
    for (table, count, cells), _ in Counter(placements).most_common():
        modal.setdefault((table, count), cells)
    tally.aligned_rows += sum(1 for table, count, cells in placements if modal[(table, count)] == cells)
    if tables and statement:
        tally.header_shares.append(_period_headers(max(tables, key=_figure_count)))


def _figure_count(table: Table) -> int:
    return sum(1 for row in table for c in row[1:] if c and _is_figure(c))


def _period_headers(table: Table) -> float:
    """The share of the table's figure columns whose header names a date."""
    first = next((k for k, row in enumerate(table) if any(c and _is_figure(c) for c in row[1:])), len(table))
    width = max(len(row) for row in table)
    columns = [
        k for k in range(1, width) if any(k < len(r) and r[k] and _is_figure(r[k]) for r in table[first:])
    ]
    if not columns:
        return 0.0
    heads = [" ".join(r[k] for r in table[:first] if k < len(r)) for k in columns]
    return sum(bool(_YEAR.search(h) and _DATE_WORD.search(h)) for h in heads) / len(columns)


def _print(tallies: dict[str, Tally]) -> None:
    header = (
        f"{'method':<16}{'tables':>7}{'rows':>6}{'false':>7}{'figures kept':>14}{'rows intact':>13}"
        f"{'aligned':>9}{'period headers':>16}{'pages/s':>9}"
    )
    print(header)
    for name, t in tallies.items():
        kept = t.kept_figures / max(t.truth_figures, 1)
        intact = t.intact_rows / max(t.truth_rows, 1)
        aligned = t.aligned_rows / max(t.truth_rows, 1)
        shares = t.header_shares
        periods = f"{sum(shares) / len(shares):.1%} of {len(shares)}" if shares else "-"
        print(
            f"{name:<16}{t.tables:>7}{t.rows:>6}{t.false_tables:>7}{kept:>14.1%}{intact:>13.1%}"
            f"{aligned:>9.1%}{periods:>16}{t.pages / t.seconds:>9.1f}"
        )
    print(
        "\ntables and rows: on the table pages; false: tables on the text pages; figures kept, rows intact,"
        "\naligned, period headers: see the module docstring; pages/s: all pages, from the open page to"
        "\nits tables."
    )


if __name__ == "__main__":
    main()
