"""Markdown tables, the one form every table takes in Lore (pure).

Extractors write tables with :func:`markdown_table`; the chunker splits them between rows, the
embedder reads their cells, and extractive answers quote their rows, all through the helpers here:
caption lines, the header row, the ``| --- |`` rule, then one line per row, ``|`` escaped in cells.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_RULE = re.compile(r"\|(?:\s*:?-{3,}:?\s*\|)+")
# A pipe between cells (one escaped as ``\|`` is part of a cell).
_SEPARATOR = re.compile(r"(?<!\\)\|")


def markdown_table(rows: Sequence[Sequence[str]], *, caption: str = "", header_rows: int = 1) -> str:
    """``rows`` as a Markdown table block.

    The first ``header_rows`` rows are the header (several header rows, as financial statements
    have, are joined cell by cell into one); every row is padded to the widest. Cell text is
    whitespace-tidied, with ``|`` escaped, so that each row is one line. ``caption`` (a table's
    caption or title), when given, comes first, on lines of its own.
    """
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return caption.strip()

    def tidy(row: Sequence[str]) -> list[str]:
        cells = [" ".join(str(c).split()).replace("|", "\\|") for c in row]
        return cells + [""] * (width - len(cells))

    head_rows = [tidy(r) for r in rows[: max(1, header_rows)]]
    header = [" ".join(part for part in column if part) for column in zip(*head_rows, strict=True)]
    lines = [caption.strip()] if caption.strip() else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(" --- " for _ in range(width)) + "|")
    lines.extend("| " + " | ".join(tidy(r)) + " |" for r in rows[max(1, header_rows) :])
    return "\n".join(lines)


def is_rule(line: str) -> bool:
    """Whether ``line`` is a Markdown table's header rule (``| --- | :---: |``)."""
    return _RULE.fullmatch(line.strip()) is not None


def is_row(line: str) -> bool:
    """Whether ``line`` is a line of table cells (the header or a row)."""
    return line.lstrip().startswith("|")


def cells(line: str) -> list[str]:
    """The cells of a table line, whitespace-tidied and unescaped."""
    return [" ".join(c.replace("\\|", "|").split()) for c in _SEPARATOR.split(line.strip().strip("|"))]


def holds_table(text: str) -> bool:
    """Whether ``text`` holds a Markdown table (a line of cells, then a rule)."""
    lines = text.split("\n")
    return any(is_rule(line) and is_row(lines[i - 1]) for i, line in enumerate(lines) if i > 0)
