"""What a crawled HTML page says about crawling: its links, its canonical URL, robots meta tags.

A pure function over the page's bytes. BeautifulSoup's UnicodeDammit finds the encoding; the
standard library's tokenizer reads the tags, as no tree is needed (three times faster than a
soup on index pages with thousands of links).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

from ingestion.crawl.robots import robots_directives
from ingestion.crawl.urls import may_be_document, try_normalise


@dataclass(frozen=True, slots=True)
class PageInfo:
    links: tuple[str, ...]
    """Normalised http(s) links that may lead to documents, in page order, without repeats."""
    canonical: str | None
    noindex: bool
    nofollow: bool


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.canonical: str | None = None
        self.hrefs: dict[str, None] = {}
        self.directives: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "area", "base", "link", "meta"):
            return
        values = {name: value or "" for name, value in attrs}
        href = values.get("href", "").strip()
        if tag == "meta":
            if values.get("name", "").lower() in ("robots", "lorebot"):
                self.directives.append(values.get("content", ""))
        elif not href:
            return
        elif tag == "base":
            self.base = self.base or href
        elif tag == "link":
            if self.canonical is None and "canonical" in values.get("rel", "").lower().split():
                self.canonical = href
        else:
            # Fragments name places in one page: dropping them first spares most normalising.
            self.hrefs[href.split("#", 1)[0]] = None


def read_page(data: bytes, url: str) -> PageInfo:
    """Links, canonical URL and robots directives of the HTML page ``data`` fetched from ``url``."""
    from bs4 import UnicodeDammit

    tags = _Tags()
    tags.feed(UnicodeDammit(data, is_html=True).unicode_markup or "")
    tags.close()
    base = (try_normalise(tags.base, url) if tags.base else None) or url
    links: dict[str, None] = {}
    for href in tags.hrefs:
        link = try_normalise(href, base)
        if link is not None and may_be_document(link):
            links[link] = None
    canonical = try_normalise(tags.canonical, base) if tags.canonical else None
    found = robots_directives(tags.directives)
    return PageInfo(tuple(links), canonical, "noindex" in found, "nofollow" in found)
