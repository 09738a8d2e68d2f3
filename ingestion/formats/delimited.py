"""CSV: one Markdown table block, its first row the header (a title line above it, the caption).

Read with the standard library rather than unstructured, whose pandas reader fails the whole file
when a later row has more cells than the first (a title line above the table, a note below it).
"""

from __future__ import annotations

import csv
import io

from core.errors import ExtractionError
from ingestion.formats.document import Block, BlockKind, ExtractedDocument, markdown_table

_DELIMITERS = ",;\t|"
_SNIFF_CHARS = 64 * 1024


def extract_csv(text: str, stem: str) -> ExtractedDocument:
    """The rows as one table block; the delimiter is sniffed, else the commonest of , ; tab |."""
    sample = text[:_SNIFF_CHARS]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
        delimiter = dialect.delimiter
    except csv.Error:
        # The sniffer wants every sampled line alike; a title line above the table defeats it.
        dialect, delimiter = csv.excel, max(_DELIMITERS, key=sample.count)
    try:
        reader = csv.reader(io.StringIO(text), dialect, delimiter=delimiter)
        rows = [[cell.strip() for cell in row] for row in reader]
    except csv.Error as exc:
        raise ExtractionError(f"the CSV file could not be read: {exc}") from exc
    rows = [row for row in rows if any(row)]
    caption = ""
    # A line of one cell above rows of several is the table's title.
    if len(rows) > 1 and sum(1 for c in rows[0] if c) == 1 and len(rows[1]) > 1:
        caption = next(c for c in rows[0] if c)
        rows = rows[1:]
    if not rows:
        return ExtractedDocument(title=stem, kind="csv", blocks=[])
    if max(len(r) for r in rows) == 1:
        # A list, not a table.
        return ExtractedDocument(title=stem, kind="csv", blocks=[Block(r[0]) for r in rows])
    table = Block(markdown_table(rows, caption=caption), kind=BlockKind.TABLE)
    return ExtractedDocument(title=stem, kind="csv", blocks=[table])
