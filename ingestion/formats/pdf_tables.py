"""Tables in PDF pages, found from where PDFium places their words.

:func:`find_tables` takes a page's lines (:class:`ingestion.formats.pdf.PdfLine`) and returns the
runs of lines that form a table, each as a :attr:`BlockKind.TABLE` block (Markdown, built with
:func:`ingestion.formats.document.markdown_table`) whose ``lines`` locate its rows on the page.

How (financial statements are the model: a label column, then right-aligned number columns under
headers of several lines):

1. Text first, so pages without tables cost next to nothing: a page needs three lines that end in
   a number (or a dash) before PDFium is asked where any character is.
2. Those lines are split into cells at wide gaps between words (a ``$`` sign stays with the number
   after it, a ``)`` or ``%`` with the one before). A line with a number in a cell after the first
   is a row; rows next to each other, with only short label lines between them ("Net sales:"),
   make a run.
3. The run's number cells are clustered into columns by where they overlap across rows; cells
   left of the first column are the row's label, and label lines are section rows, or the start
   of the next row's label when it wraps.
4. Above the first row come the header lines (cells over the columns, no amounts in them): each
   header cell goes to the column under it, or to every column under it when it spans several (as
   "Three Months Ended" over two dates does), and each column's header reads top to bottom. Above
   the header, up to four title lines (centred, in capitals or in parentheses) are the caption.
5. A run is a table with three rows or more; with two, or with one of two periods or more, when
   the header names every column.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingestion.formats.document import Block, BlockKind, Box, Line, markdown_table

if TYPE_CHECKING:
    import pypdfium2

    from ingestion.formats.pdf import PdfLine

_TOKEN = re.compile(r"\S+")
# A figure as financial statements print it: 1,234  (1,234)  $1.20  -5  12.5%  (0.29)
_DIGITS = r"\d(?:[\d,]*\d)?(?:\.\d+)?%?"
_NUMBER = re.compile(rf"[-–]?\$?(?:\(\$?[-–]?{_DIGITS}\)|{_DIGITS})%?")
# No figure: a dash, "not meaningful" (* or NM), "not applicable".
_DASH = re.compile(r"[-–—]+%?|\*{1,3}|NM|N/?A|n/a")
_YEAR = re.compile(r"(?:19|20)\d\d")
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d", re.IGNORECASE)
# What a header cell never holds (a date, a year or a footnote's "(1)" may): thousands, decimals,
# dollars, negatives.
_AMOUNT = re.compile(r"\d,\d{3}|\d\.\d|\$|\(\d{2}")
# A period: "Three Months Ended", "As of" (in the label column's header, it belongs to each column
# under it: "Three Months Ended September 30," over the years).
_PERIOD = re.compile(r"\b(?:weeks|months|quarters?|years?)\s+ended\b|\bas\s+of\b", re.IGNORECASE)
# A column header that is a period and its year: "Three Months Ended September 30, 2021".
_PERIOD_OF_YEAR = re.compile(
    r"((.*\b(?:weeks|months|quarters?|years?)\s+ended)\b.*?)\s+(?:19|20)\d\d", re.IGNORECASE
)
# Tokens that never start a cell.
_CLOSERS = frozenset({")", "%", ")%", "%)"})
# Words that may follow a figure in its cell ("5.5 pts").
_UNITS = frozenset({"pts", "ppts", "bps", "pp", "points", "x", "years", "year", "months", "days"})
# A header cell saying what the figures count: it heads the label column wherever it sits.
_UNIT_NOTE = re.compile(r"\(.*\bin (?:millions|thousands|billions)\b.*\)", re.IGNORECASE)
# Rows a table needs (fewer when a header names every column: see _table).
_MIN_ROWS = 3
# Words in a cell are closer than this (times the line's height); cells are further apart.
_CELL_GAP = 1.0
# Between two figures, or before a $ sign, a much smaller gap starts a new cell.
_FIGURE_GAP = 0.3
# Lines of a table (rows, header, caption) are at most this many line heights apart.
_ROW_GAP = 3.0
_CAPTION_GAP = 2.5
_MAX_CAPTION_LINES = 4
_CAPTION_LENGTH = 120
# Title lines this close to the page's top edge (a share of its height) are running heads.
_RUNNING_HEAD = 0.05
# Longer label lines above the first row, or with a sentence in them, are prose, not rows.
_SECTION_LENGTH = 80
# Words a label line may end in when its label goes on in the next line.
_GOES_ON = frozenset(
    ("a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with", "U.S.")
)
# Label lines between rows are at most this long (a wrapped label, a section's), not prose.
_LABEL_LENGTH = 160
_SENTENCE = re.compile(r"\w\.\s+[A-Z(]|\w{3}\.$")
# Header cells have fewer spaces than this (but for a parenthesised note, "(In millions, ...)").
_HEADER_WORDS = 8
# Points a header cell may start left of the first column (headers are centred over figures).
_HEADER_SLACK = 2.0
# A header cell spans columns when its middle is this close (a share of their width) to theirs.
_SPAN_CENTRE = 0.1
# A run's column cells must be figures at least this often.
_MIN_FIGURE_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class PdfTable:
    """Lines ``first`` to ``last`` (inclusive, indices into the page's lines) are this table."""

    first: int
    last: int
    block: Block


@dataclass(frozen=True, slots=True)
class _Cell:
    x0: float
    x1: float
    top: float
    bottom: float
    text: str
    figure: bool  # is_figure(text)


@dataclass(slots=True)
class _Row:
    """One Markdown row: its label, its column cells and the page lines it came from."""

    lines: list[int]
    label: list[str] = field(default_factory=list)
    cells: list[_Cell] = field(default_factory=list)


def is_figure(text: str) -> bool:
    """Whether ``text`` (a cell) is a number as tables print them, or a dash for none."""
    text = text.removeprefix("$").strip()
    number, _, unit = text.partition(" ")
    if unit in _UNITS:
        text = number
    return bool(_NUMBER.fullmatch(text) or _DASH.fullmatch(text))


def find_tables(textpage: pypdfium2.PdfTextPage, lines: Sequence[PdfLine], height: float) -> list[PdfTable]:
    """The tables among ``lines`` (a page's, in order), in order, none overlapping (the caller holds
    PDFium's lock)."""
    ends_in_figure = [i for i, line in enumerate(lines) if _ends_in_figure(line.text)]
    if len(ends_in_figure) < _MIN_ROWS:
        return []
    page = _Page(textpage, lines, height)
    rows = [i for i in ends_in_figure if _is_row(page.cells(i))]
    tables: list[PdfTable] = []
    floor = 0  # lines above this belong to an earlier table
    for run in _runs(page, rows):
        table = _table(page, run, floor)
        if table is not None:
            tables.append(table)
            floor = table.last + 1
    return tables


def _ends_in_figure(text: str) -> bool:
    words = text.rsplit(" ", 2)
    if len(words) < 2:
        return False
    last = words[-1]
    if len(words) > 2 and last in _CLOSERS:
        last = words[-2] + last  # "(5,644 )"
    elif len(words) > 2 and last in _UNITS:
        last = f"{words[-2]} {last}"  # "5.5 pts"
    return is_figure(last)


def _is_row(cells: Sequence[_Cell]) -> bool:
    """A line with a figure in a cell after the first, not a header of years."""
    figures = [c for c in cells[1:] if c.figure]
    return bool(figures) and not all(_YEAR.fullmatch(c.text) for c in figures)


class _Page:
    """A page's lines with their cells, measured on demand (PDFium calls are what costs)."""

    def __init__(self, textpage: pypdfium2.PdfTextPage, lines: Sequence[PdfLine], height: float) -> None:
        self.textpage = textpage
        self.lines = lines
        self.height = height
        self.text = textpage.get_text_range(0, textpage.count_chars())
        self._cells: dict[int, list[_Cell]] = {}
        self._width: float | None = None

    @property
    def width(self) -> float:
        if self._width is None:
            self._width = float(self.textpage.page.get_width())
        return self._width

    def cells(self, index: int) -> list[_Cell]:
        cells = self._cells.get(index)
        if cells is None:
            cells = self._cells[index] = self._measure(self.lines[index])
        return cells

    def _measure(self, line: PdfLine) -> list[_Cell]:
        """The line's words grouped into cells at wide gaps."""
        _, top, _, bottom = line.box
        size = max(bottom - top, 1.0)
        groups: list[tuple[float, float, list[str]]] = []
        was_figure = False
        for match in _TOKEN.finditer(self.text, line.start, line.end):
            word = _tidy(match.group().replace("\x02", "-"))
            if not word:
                continue
            x0 = self.textpage.get_charbox(match.start())[0]
            x1 = self.textpage.get_charbox(match.end() - 1)[2]
            figure = is_figure(word)
            if groups:
                start, end, words = groups[-1]
                gap = x0 - end
                joined = words[-1] == "$" or word in _CLOSERS
                figures = word == "$" or (was_figure and figure)
                if not joined and (gap > _CELL_GAP * size or (figures and gap > _FIGURE_GAP * size)):
                    groups.append((x0, x1, [word]))
                else:
                    words.append(word)
                    groups[-1] = (start, max(end, x1), words)
            else:
                groups.append((x0, x1, [word]))
            was_figure = figure
        cells = []
        for x0, x1, words in groups:
            text = _cell_text(words)
            cells.append(_Cell(x0, x1, top, bottom, text, is_figure(text)))
        return cells


def _tidy(text: str) -> str:
    # PDFium writes a hyphen that a cell's text wraps at as U+FFFE ("Non\ufffeCash"), which no
    # stored text may hold: cleaning would drop it, and the block's line spans with it.
    return text.replace("\ufffe", "-")


def _cell_text(words: list[str]) -> str:
    # "$ 63,355" and "12 %" as statements print them read "$63,355" and "12%".
    text = " ".join(words).replace(" %", "%").replace(" )", ")")
    return "$" + text[2:] if text.startswith("$ ") else text


def _runs(page: _Page, rows: list[int]) -> list[list[int]]:
    """Rows in runs: neighbours with only short label lines (no text over the figures) between
    them, and no wide vertical gap."""
    runs: list[list[int]] = []
    current: list[int] = []
    figures_left = 0.0  # where the run's first figure starts
    for row in rows:
        if current and _joins(page, current[-1], row, figures_left):
            current.append(row)
        else:
            if current:
                runs.append(current)
            current = [row]
            figures_left = float("inf")
        figures_left = min(figures_left, *(c.x0 for c in page.cells(row)[1:] if c.figure))
    if current:
        runs.append(current)
    return runs


def _joins(page: _Page, last: int, row: int, figures_left: float) -> bool:
    above = page.lines[last]
    size = max(above.box[3] - above.box[1], 1.0)
    for i in range(last + 1, row + 1):
        line = page.lines[i]
        if line.box[1] - above.box[3] > _ROW_GAP * size or line.box[1] < above.box[1]:
            return False
        if i < row and not _is_label_line(line, figures_left):
            return False
        above = line
    return True


def _is_label_line(line: PdfLine, figures_left: float) -> bool:
    """A line between rows with a label only (a section's, or one wrapped): clear of the figures,
    and no prose."""
    return line.box[2] < figures_left and len(line.text) <= _LABEL_LENGTH and not _SENTENCE.search(line.text)


def _size(page: _Page, indices: Sequence[int]) -> float:
    return statistics.median(max(page.lines[i].box[3] - page.lines[i].box[1], 1.0) for i in indices)


def _columns(cells: list[_Cell], rows: int) -> list[tuple[float, float]]:
    """The spans of the columns that ``cells`` (figures of several rows) fall into: cells that
    overlap are one column; the first column needs cells from ``rows`` rows."""
    spans: list[list[float]] = []
    counts: list[int] = []
    for cell in sorted(cells, key=lambda c: c.x0):
        if spans and cell.x0 <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], cell.x1)
            counts[-1] += 1
        else:
            spans.append([cell.x0, cell.x1])
            counts.append(1)
    # A figure alone left of every column is in a label ("$136" wrapped from the line above).
    first = next((k for k, n in enumerate(counts) if n >= rows), len(spans))
    return [(x0, x1) for x0, x1 in spans[first:]]


def _slot(columns: list[tuple[float, float]], cell: _Cell) -> int:
    """The column a cell belongs to: the one it overlaps most, else the nearest."""
    best, best_overlap = 0, -1.0
    for k, (x0, x1) in enumerate(columns):
        overlap = min(x1, cell.x1) - max(x0, cell.x0)
        if overlap > best_overlap:
            best, best_overlap = k, overlap
    if best_overlap > 0:
        return best
    middle = (cell.x0 + cell.x1) / 2
    return min(range(len(columns)), key=lambda k: abs((columns[k][0] + columns[k][1]) / 2 - middle))


def _slots(columns: list[tuple[float, float]], left: float) -> list[tuple[float, float]]:
    """Each column's share of the page width: from the middle of the gap before it to the middle
    of the gap after it."""
    bounds = [left] + [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(columns)] + [1e9]
    return list(itertools.pairwise(bounds))


def _table(page: _Page, run: list[int], floor: int) -> PdfTable | None:
    columns = _columns([c for i in run for c in page.cells(i) if c.figure], min(2, len(run)))
    firsts = [page.cells(i)[0] for i in run]
    if len(columns) > 1 and all(c.x1 >= columns[0][0] for c in firsts):
        # Years down the left ("2024", "2025", "Thereafter"), with nothing left of them: labels.
        columns = columns[1:]
    if not columns:
        return None
    left = columns[0][0]
    rows = set(run)
    body: list[_Row] = []
    for i in range(run[0], run[-1] + 1):
        row = _Row([i])
        if i in rows:
            for cell in page.cells(i):
                if cell.x1 < left:
                    row.label.append(cell.text)
                else:
                    row.cells.append(cell)
        else:
            row.label.append(_tidy(page.lines[i].text))
        body.append(row)
    body = _join_wrapped_labels(body)
    column_cells = [c for row in body for c in row.cells]
    figure_rows = sum(1 for row in body if any(c.figure for c in row.cells))
    if sum(c.figure for c in column_cells) < _MIN_FIGURE_SHARE * len(column_cells):
        return None

    size = _size(page, run)
    # Going up from the first row: short label lines (section rows, "Net sales:"), then header
    # lines, then title lines (the caption).
    i = run[0] - 1
    top = page.lines[run[0]].box[1]
    sections: list[int] = []
    while i >= floor and _close_above(page.lines[i], top, top, size) and _is_section(page.lines[i], left):
        sections.insert(0, i)
        top = page.lines[i].box[1]
        i -= 1
    body_top = top
    header: list[int] = []
    while i >= floor and _close_above(page.lines[i], top, body_top, size):
        box = page.lines[i].box
        in_band = any(_same_band(box, page.lines[h].box) for h in header)
        # "(In millions)" heads the label column right over the rows; above a header, it is
        # part of the caption.
        note = _is_unit_note(page, i) and not in_band
        if (note and header) or not (note or _is_header(page, i, left, in_band)):
            break
        header.insert(0, i)
        top = min(top, box[1])
        i -= 1
    if header == [i + 1] and _is_unit_note(page, i + 1):
        i += 1
        header.clear()
        top = body_top
    caption: list[int] = []
    if not header:
        # With no header between them, title lines over the section rows are the caption.
        while sections and _is_title(page, sections[0]):
            caption.append(sections.pop(0))
    while (
        i >= floor
        and len(caption) < _MAX_CAPTION_LINES
        and _close_above(page.lines[i], top, body_top, size, _CAPTION_GAP)
        and _is_title(page, i)
    ):
        caption.insert(0, i)
        top = min(top, page.lines[i].box[1])
        i -= 1
    labels = min(page.lines[n].box[0] for n in run)
    stub, heads = _header_texts(page, header, columns, labels) if header else ("", [""] * len(columns))
    # Two rows are a table under a header that names every column; one row under periods (a
    # line item of the results of operations, printed with its own header).
    if figure_rows < _MIN_ROWS and not (
        all(heads) and (figure_rows > 1 or (len(heads) > 1 and any(_is_period(h) for h in heads)))
    ):
        return None
    body = _join_wrapped_labels([_Row([s], [_tidy(page.lines[s].text)]) for s in sections] + body)
    return _build(page, [stub, *heads], caption, header, body, columns)


def _is_section(line: PdfLine, left: float) -> bool:
    """A short label line, clear of the columns: "Net sales:", "ASSETS", "(In millions)"; not
    the end of a paragraph."""
    text = line.text
    return (
        line.box[2] < left
        and len(text) <= _SECTION_LENGTH
        and not (text[0].islower() or text[0].isdigit())
        and not _SENTENCE.search(text)
    )


def _same_band(a: Box, b: Box) -> bool:
    """Whether two boxes sit side by side (on one header line, as PDFium may split it)."""
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap > 0.5 * min(a[3] - a[1], b[3] - b[1])


def _close_above(line: PdfLine, top: float, body_top: float, size: float, gap: float = _ROW_GAP) -> bool:
    """Whether ``line`` is above the table's body and at most ``gap`` line heights above ``top``
    (header lines of several columns come in any order)."""
    return line.box[1] < body_top and top - line.box[3] <= gap * size


def _is_header(page: _Page, index: int, left: float, in_band: bool) -> bool:
    """Words, dates and years over the columns, no amounts. A line beside other header lines may
    be the label column's header alone; one alone at its height must not start with prose, needs
    cells mostly over the columns or clear of them, one over them at least, and must not be a
    title centred on the page (a caption's "(Unaudited)")."""
    cells = page.cells(index)
    if any(_AMOUNT.search(c.text) and not _UNIT_NOTE.fullmatch(c.text) for c in cells):
        return False
    if in_band:
        return True
    if any(_is_prose(c.text) for c in cells if c.x0 < left - _HEADER_SLACK):
        return False
    if len(cells) == 1 and _is_centred(page, index) and _is_marked_title(cells[0].text):
        return False
    over = [c.x0 + c.x1 >= 2 * (left - _HEADER_SLACK) for c in cells]
    return any(over) and all(is_over or c.x1 < left for c, is_over in zip(cells, over, strict=True))


def _is_unit_note(page: _Page, index: int) -> bool:
    """A line that only says what the figures count: "(In millions, except per share data)"."""
    return bool(_UNIT_NOTE.fullmatch(page.lines[index].text))


def _is_prose(text: str) -> bool:
    if text.startswith("(") and text.endswith(")"):
        return False
    return text.count(" ") >= _HEADER_WORDS or bool(_SENTENCE.search(text))


def _is_title(page: _Page, index: int) -> bool:
    """A short line centred on the page, in capitals, or in parentheses."""
    line = page.lines[index]
    text = line.text
    if len(text) > _CAPTION_LENGTH or line.box[1] < _RUNNING_HEAD * page.height:
        return False
    return _is_marked_title(text) or _is_centred(page, index)


def _is_marked_title(text: str) -> bool:
    """In capitals or in parentheses: "BALANCE SHEETS", "(Unaudited)"."""
    letters = [ch for ch in text if ch.isalpha()]
    return (len(letters) >= 4 and all(ch.isupper() for ch in letters)) or (
        text.startswith("(") and text.endswith(")")
    )


def _is_centred(page: _Page, index: int) -> bool:
    box = page.lines[index].box
    return abs(box[0] + box[2] - page.width) < 0.06 * page.width and box[0] > 0.1 * page.width


def _join_wrapped_labels(body: list[_Row]) -> list[_Row]:
    """A label line that does not end its label joins the next row: it has no colon, and it
    ends in a word that goes on ("of", "the", "U.S.") or the next line goes on in lower case or
    has figures but no label of its own."""
    out: list[_Row] = []
    for row in body:
        previous = out[-1] if out else None
        if previous is not None and not previous.cells and not _label(previous).endswith(":"):
            label = _label(row)
            last_word = _label(previous).rpartition(" ")[2]
            if not label or not label[0].isupper() or last_word in _GOES_ON:
                row.lines = previous.lines + row.lines
                row.label = previous.label + row.label
                out[-1] = row
                continue
        out.append(row)
    return out


def _label(row: _Row) -> str:
    return " ".join(row.label)


def _header_texts(
    page: _Page, header: list[int], columns: list[tuple[float, float]], labels: float
) -> tuple[str, list[str]]:
    """The label column's header and each column's, read top to bottom (``labels``: where the
    labels start)."""
    left = columns[0][0]
    slots = _slots(columns, left - _HEADER_SLACK)
    cells = [c for i in header for c in page.cells(i)]
    # Header cells clear of the first column head the labels (but a word centred over a narrow
    # column, wider than its figures, may start and even end left of them).
    reach = left - (columns[0][1] - columns[0][0]) / 4
    over = [c for c in cells if c.x1 >= left or (c.x1 >= reach and c.x0 > (labels + left) / 2)]
    # "(In millions)" with no other header cell at its height over the columns is the label
    # column's: it counts every figure.
    notes = [
        c
        for c in over
        if _UNIT_NOTE.fullmatch(c.text) and not any(o is not c and _same_band(_box(o), _box(c)) for o in over)
    ]
    over = [c for c in over if c not in notes]
    stub_cells = [c for c in cells if c.x1 < left and c not in over] + notes
    placed: list[list[_Cell]] = [[] for _ in columns]
    under = [_slot(columns, c) for c in over]
    for n, cell in enumerate(over):
        below = {under[m] for m, c in enumerate(over) if m != n and c.top >= cell.bottom - 0.5}
        alone = not any(m != n and _same_band(_box(c), _box(cell)) for m, c in enumerate(over))
        for k in _spanned(cell, columns, slots, below, alone):
            placed[k].append(cell)
    texts = _lend_periods([_read(p) for p in placed])
    stub = _read(stub_cells)
    if _PERIOD.search(stub) and all(_YEAR.fullmatch(t) for t in texts):
        # "Three Months Ended September 30," over the years: each column is one period.
        return "", [f"{stub} {t}" for t in texts]
    return stub, texts


def _spanned(
    cell: _Cell,
    columns: list[tuple[float, float]],
    slots: list[tuple[float, float]],
    below: set[int],
    alone: bool,
) -> range:
    """The columns a header cell heads: several when it is centred over them and the header lines
    below it have cells in two of them or more ("Three Months Ended" over two dates), else the one
    it overlaps most. A date alone at its height may head columns beyond those it overlaps (as over
    a whole table)."""
    middle = (cell.x0 + cell.x1) / 2
    reach = [k for k, (a, b) in enumerate(slots) if min(b, cell.x1) > max(a, cell.x0)]
    if alone and reach and _is_period(cell.text):
        reach = list(range(len(columns)))
    widest = range(0)
    for first, last in itertools.combinations(reach, 2):
        x0, x1 = columns[first][0], columns[last][1]
        if (
            last - first + 1 > len(widest)
            and abs((x0 + x1) / 2 - middle) <= _SPAN_CENTRE * (x1 - x0)
            and len(below.intersection(range(first, last + 1))) > 1
        ):
            widest = range(first, last + 1)
    if widest:
        return widest
    share = [min(b, cell.x1) - max(a, cell.x0) for a, b in slots]
    best = max(range(len(slots)), key=share.__getitem__)
    return range(best, best + 1)


def _lend_periods(texts: list[str]) -> list[str]:
    """A column headed by a year or a date alone, beside one headed "Three Months Ended
    September 30, 2021", is the same period ending then: a heading over several columns may be
    aligned with the right of them (``| 2022 | Three Months Ended September 30, 2021 |``, the
    period goes left) or with the left (``| Three Months Ended October 30, 2022 | October 31,
    2021 |``, the period goes right, as when the last column is bare and the first is not)."""

    def bare(text: str) -> bool:
        dated = _YEAR.fullmatch(text) or (_MONTH.search(text) and _YEAR.search(text))
        return bool(dated) and not _PERIOD.search(text)

    rightwards = bare(texts[-1]) and not bare(texts[0])
    out = list(texts)
    for k, text in enumerate(texts):
        if not bare(text):
            continue
        for n in (k - 1, k + 1) if rightwards else (k + 1, k - 1):
            period = _PERIOD_OF_YEAR.fullmatch(texts[n]) if 0 <= n < len(texts) else None
            if period:
                # Before a year, all but the year ("... Ended September 30,"); before a date, the
                # period alone ("Three Months Ended").
                out[k] = f"{period.group(1) if _YEAR.fullmatch(text) else period.group(2)} {text}"
                break
    return out


def _is_period(text: str) -> bool:
    """A date or a period: "June 25, 2022", "2022", "Three Months Ended"."""
    return bool(_PERIOD.search(text) or _YEAR.fullmatch(text) or (_MONTH.search(text) and _YEAR.search(text)))


def _read(cells: list[_Cell]) -> str:
    """Cells in reading order: top to bottom, then left to right."""
    return " ".join(c.text for c in sorted(cells, key=lambda c: (round(c.top), c.x0)))


def _build(
    page: _Page,
    head: list[str],
    caption: list[int],
    header: list[int],
    body: list[_Row],
    columns: list[tuple[float, float]],
) -> PdfTable:
    """The table's block: its Markdown, and a line (span and box) for each Markdown line that has
    a place on the page (the caption's, the header, each row)."""
    rows: list[list[str]] = [head]
    for row in body:
        values = [""] * len(columns)
        for cell in row.cells:
            k = _slot(columns, cell)
            values[k] = f"{values[k]} {cell.text}".strip()
        rows.append([_label(row), *values])
    caption_text = "\n".join(_tidy(page.lines[i].text) for i in caption)
    text = markdown_table(rows, caption=caption_text)
    # Markdown lines: the caption's, the header, the rule, then one per row.
    boxes: list[Box | None] = [page.lines[i].box for i in caption]
    boxes.append(_union([page.lines[i].box for i in header]) if header else None)
    boxes.append(None)
    boxes.extend(_union([page.lines[i].box for i in row.lines]) for row in body)
    spans: list[Line] = []
    position = 0
    for piece, box in zip(text.split("\n"), boxes, strict=True):
        if box is not None:
            spans.append(Line(position, position + len(piece), box))
        position += len(piece) + 1
    first = min([*caption, *header, *(i for row in body for i in row.lines)])
    last = max(i for row in body for i in row.lines)
    return PdfTable(first, last, Block(text, kind=BlockKind.TABLE, lines=tuple(spans)))


def _box(cell: _Cell) -> Box:
    return (cell.x0, cell.top, cell.x1, cell.bottom)


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
