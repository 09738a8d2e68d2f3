"""HTML: main content only (navigation, scripts and page chrome dropped), headings as a path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingestion.formats.document import (
    Block,
    BlockKind,
    ExtractedDocument,
    join_heading_blocks,
    markdown_table,
)

if TYPE_CHECKING:
    from bs4 import Tag

_HTML_DROP = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template")
_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# ARIA landmarks of page chrome, which documentation generators (Sphinx, MkDocs) put on <div>s.
_CHROME_ROLES = ("navigation", "banner", "contentinfo", "complementary", "search")
# Permalink anchors beside headings (Sphinx's "¶", MkDocs' "#").
_PERMALINK_CLASSES = ("headerlink", "anchorlink", "headeranchor")


def extract_html(html: str, stem: str) -> ExtractedDocument:
    """Blocks of the page's main content; the title is <title>, else the first heading."""
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for tag in soup.find_all(role=list(_CHROME_ROLES)):
        tag.decompose()
    for tag in soup.find_all("a", class_=list(_PERMALINK_CLASSES)):
        tag.decompose()
    root = soup.find("main") or soup.find(role="main") or soup.find("article") or soup.body or soup
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    anchor: str | None = None
    for el in root.find_all([*_HTML_HEADINGS, "p", "li", "pre", "blockquote", "table", "dt", "dd"]):
        if not isinstance(el, Tag):
            continue
        # Skip elements nested in one already taken whole (a <p> inside an <li>, a <dd> or a cell).
        if el.find_parent(["li", "table", "pre", "blockquote", "dd"]) is not None:
            continue
        if el.name in _HTML_HEADINGS:
            level, heading = int(el.name[1]), el.get_text(" ", strip=True)
            if not heading:
                continue
            title = title or heading
            path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
            anchor = _anchor(el) or anchor
            blocks.append(Block(heading, headings=tuple(h for _, h in path), anchor=anchor))
            continue
        if el.name == "table":
            rows, header_rows = table_rows(el)
            if rows:
                caption = el.find("caption")
                text = markdown_table(
                    rows,
                    caption=caption.get_text(" ", strip=True) if caption else "",
                    header_rows=header_rows,
                )
                blocks.append(
                    Block(text, headings=tuple(h for _, h in path), kind=BlockKind.TABLE, anchor=anchor)
                )
            continue
        elif el.name == "li":
            item = el.get_text(" ", strip=True)
            text = f"- {item}" if item else ""
        else:
            text = el.get_text(" ", strip=True)
        if text:
            blocks.append(Block(text, headings=tuple(h for _, h in path), anchor=anchor))
    return ExtractedDocument(title=title or stem, kind="html", blocks=join_heading_blocks(blocks))


def table_rows(table: Tag) -> tuple[list[list[str]], int]:
    """The non-empty rows of ``table`` as cell texts (a cell spanning columns repeated in each), and
    how many of the first rows are its header (its ``<thead>`` rows, else leading rows of ``<th>``)."""
    from bs4 import Tag

    rows: list[list[str]] = []
    header_rows = 0
    in_header = True
    for tr in table.find_all("tr"):
        # Rows of a table nested in a cell belong to that table.
        if tr.find_parent("table") is not table:
            continue
        cells = [c for c in tr.find_all(["th", "td"]) if c.find_parent("tr") is tr]
        texts: list[str] = []
        for cell in cells:
            span = cell.get("colspan")
            repeat = int(span) if isinstance(span, str) and span.isdigit() and 0 < int(span) <= 50 else 1
            texts.extend([cell.get_text(" ", strip=True)] * repeat)
        if not any(texts):
            continue
        heading_row = tr.find_parent("thead") is not None or all(
            isinstance(c, Tag) and c.name == "th" for c in cells
        )
        if in_header and heading_row:
            header_rows += 1
        else:
            in_header = False
        rows.append(texts)
    return rows, header_rows


def _anchor(heading: Tag) -> str | None:
    """The fragment that opens the page at ``heading``: its id, an id inside it, or its section's."""
    from bs4 import Tag

    if isinstance(heading.get("id"), str):
        return str(heading["id"])
    inner = heading.find(id=True) or heading.find("a", attrs={"name": True})
    if isinstance(inner, Tag):
        value = inner.get("id") or inner.get("name")
        if isinstance(value, str):
            return value
    parent = heading.parent
    # Sphinx and many generators put the id on the <section> (or <div class="section">) it opens.
    if (
        isinstance(parent, Tag)
        and parent.name in ("section", "div", "article")
        and isinstance(parent.get("id"), str)
    ):
        first = parent.find(_HTML_HEADINGS)
        if first is heading:
            return str(parent["id"])
    return None
