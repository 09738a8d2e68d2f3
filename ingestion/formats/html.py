"""HTML: main content only (navigation, scripts and page chrome dropped), headings as a path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingestion.formats.document import Block, ExtractedDocument, join_heading_blocks

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
            blocks.append(Block(heading, headings=tuple(h for _, h in path)))
            continue
        if el.name == "table":
            text = "\n".join(table_rows(el))
        elif el.name == "li":
            item = el.get_text(" ", strip=True)
            text = f"- {item}" if item else ""
        else:
            text = el.get_text(" ", strip=True)
        if text:
            blocks.append(Block(text, headings=tuple(h for _, h in path)))
    return ExtractedDocument(title=title or stem, kind="html", blocks=join_heading_blocks(blocks))


def table_rows(table: Tag) -> list[str]:
    """Each non-empty row of ``table`` as its cells joined by `` | ``."""
    rows = []
    for tr in table.find_all("tr"):
        cells = [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
