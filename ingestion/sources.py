"""What a job ingests: sources (files on disk, or bytes already fetched) and finding them in folders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingestion.extract import SUPPORTED_SUFFIXES


@dataclass(frozen=True, slots=True)
class Source:
    """One document to ingest: a file on disk, or bytes already fetched (an upload, a crawled page).

    ``source`` is its URI (absolute path or URL), from which the document ID derives; ``name`` is
    the file name whose suffix picks the extractor. ``not_modified`` marks a document its fetcher
    found unchanged since it was indexed (an HTTP 304): there are no bytes to read.
    """

    source: str
    name: str
    path: Path | None = None
    data: bytes | None = None
    not_modified: bool = False
    # The source's own modification time when its fetcher knows it (a file's mtime, a page's
    # Last-Modified header); chunks carry it as the document's date for search filters.
    modified: datetime | None = None

    # Why its fetcher could not get it (a crawl's refused or failed URL): it fails with this reason,
    # so the job records it as it records any document that failed.
    error: str | None = None

    @classmethod
    def from_path(cls, path: Path) -> Source:
        resolved = path.resolve()
        mtime = datetime.fromtimestamp(resolved.stat().st_mtime, tz=UTC)
        return cls(source=str(resolved), name=resolved.name, path=resolved, modified=mtime)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    async def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return await asyncio.to_thread(self.path.read_bytes)


def discover(paths: Iterable[Path]) -> list[Source]:
    """Files to ingest: supported files under each directory, and each file named directly.

    A file named directly is always taken (an unsupported or missing one then fails with its reason,
    never the rest); inside directories, hidden entries and unsupported types are passed over.
    """
    found: dict[str, Source] = {}
    for path in paths:
        if not path.exists():
            resolved = path.resolve()
            src = Source(
                source=str(resolved),
                name=resolved.name,
                path=resolved,
                error=f"no such file or directory: {path}",
            )
            found.setdefault(src.source, src)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    src = Source.from_path(child)
                    found.setdefault(src.source, src)
        else:
            src = Source.from_path(path)
            found.setdefault(src.source, src)
    return list(found.values())
