"""CSV: one block per row, cells joined by `` | ``.

Read with the standard library rather than unstructured, whose pandas reader fails the whole file
when a later row has more cells than the first (a title line above the table, a note below it).
"""

from __future__ import annotations

import csv
import io

from core.errors import ExtractionError
from ingestion.formats.document import Block, ExtractedDocument

_DELIMITERS = ",;\t|"
_SNIFF_CHARS = 64 * 1024


def extract_csv(text: str, stem: str) -> ExtractedDocument:
    """Each non-empty row as a block; the delimiter is sniffed, else the commonest of , ; tab |."""
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
    blocks = [Block(" | ".join(row)) for row in rows if any(row)]
    return ExtractedDocument(title=stem, kind="csv", blocks=blocks)
