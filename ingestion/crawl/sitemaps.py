"""Sitemaps (sitemaps.org): URL sets and sitemap index files, plain or gzip-compressed.

Pure functions over bytes. A sitemap with a DOCTYPE is refused, so no entity can be declared and
expanded (the "billion laughs" attack needs one).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Literal
from xml.etree import ElementTree

from core.errors import ExtractionError

_XML_START = re.compile(rb"(\xef\xbb\xbf)?\s*<")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: Literal["urlset", "sitemapindex"]
    locations: list[str]


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """``data`` decompressed if it is gzip, else as it is; raises past ``max_bytes``."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ExtractionError(f"broken gzip data: {exc}") from None
    if len(out) > max_bytes:
        raise ExtractionError(f"more than {max_bytes} bytes once decompressed")
    return out


def parse_sitemap(data: bytes) -> Sitemap | None:
    """The sitemap in ``data`` (already decompressed), or None when it is not one."""
    if not _XML_START.match(data) or _DOCTYPE.search(data):
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    name = _local(root.tag)
    if name not in ("urlset", "sitemapindex"):
        return None
    kind: Literal["urlset", "sitemapindex"] = "urlset" if name == "urlset" else "sitemapindex"
    entry = "url" if kind == "urlset" else "sitemap"
    locations = []
    # Only <loc> directly under an entry: extensions (image:loc, ...) also use the name.
    for child in root:
        if _local(child.tag) != entry:
            continue
        for loc in child:
            if _local(loc.tag) == "loc" and loc.text and loc.text.strip():
                locations.append(loc.text.strip())
    return Sitemap(kind, locations)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()
