"""What a crawl remembers for the next one, per corpus: validators, content hash and links per URL.

A JSON file, ``<data_dir>/crawl/<corpus>.json``. It is a cache: an entry is used only while the
corpus still holds that URL's document with the same content hash, so a lost, stale or broken
file costs full downloads, never a wrong result.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from core import ids

_VERSION = 1


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One fetched document: how to ask whether it changed, what it linked to, its canonical URL."""

    content_hash: str
    name: str
    etag: str | None = None
    last_modified: str | None = None
    links: tuple[str, ...] = ()
    canonical: str | None = None
    crawl: str = ""
    """Which crawl (:func:`crawl_key`) stored it."""

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def crawl_key(starts: Sequence[str]) -> str:
    """Names a crawl by its start URLs, so two crawls into one corpus keep apart."""
    return ids.content_hash("\n".join(sorted(starts)))[:16]


@dataclass(slots=True)
class CrawlState:
    pages: dict[str, PageRecord] = field(default_factory=dict)

    @staticmethod
    def path(data_dir: Path, corpus: str) -> Path:
        """Where the state of ``corpus`` lives (its name made safe as a file name)."""
        name = quote(corpus, safe=" -_.")
        if len(name) > 150 or name.startswith("."):
            name = ids.content_hash(corpus)[:32]
        return data_dir / "crawl" / f"{name}.json"

    @classmethod
    def load(cls, path: Path) -> CrawlState:
        """The state in ``path``; an empty one if it is missing or unreadable."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") != _VERSION:
                return cls()
            pages = {
                url: PageRecord(
                    content_hash=entry["content_hash"],
                    name=entry["name"],
                    etag=entry.get("etag"),
                    last_modified=entry.get("last_modified"),
                    links=tuple(entry.get("links", ())),
                    canonical=entry.get("canonical"),
                    crawl=entry.get("crawl", ""),
                )
                for url, entry in raw["pages"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()
        return cls(pages)

    def save(self, path: Path) -> None:
        """Write the state atomically: a crash leaves the old file or the new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": _VERSION,
            "pages": {url: asdict(rec) for url, rec in sorted(self.pages.items())},
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
