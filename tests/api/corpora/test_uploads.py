"""Multipart bodies streamed to disk: names made safe, limits enforced as bytes arrive, all or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from api.corpora.uploads import receive_files, safe_file_name
from core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedFormatError


def multipart(files: Sequence[tuple[str, bytes]], fields: dict[str, str] | None = None) -> tuple[str, bytes]:
    """A multipart/form-data body as httpx writes one: its content type, and its bytes."""
    request = httpx.Request(
        "POST", "http://lore.test/", files=[("files", (n, d)) for n, d in files], data=fields
    )
    return request.headers["content-type"], request.read()


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/report.txt", "report.txt"),
        ("C:\\Users\\ann\\Q3 plan.md", "Q3 plan.md"),
        ("/abs/path/to/a.PDF", "a.PDF"),
        ("  spaced.txt ", "spaced.txt"),
    ],
)
def test_a_file_keeps_its_name_without_its_directories(raw: str, kept: str) -> None:
    assert safe_file_name(raw) == kept


@pytest.mark.parametrize(
    "raw", ["", "..", "dir/..", ".", "a/", ".hidden.md", "bad\x00name.md", "x" * 300 + ".md"]
)
def test_unusable_file_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInputError):
        safe_file_name(raw)


def test_a_type_lore_cannot_ingest_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedFormatError):
        safe_file_name("tool.exe")


async def test_files_are_written_under_their_names_and_nothing_else_is_left(tmp_path: Path) -> None:
    content_type, body = multipart([("a.md", b"# A\n\nalpha\n"), ("../b.txt", b"bravo")])

    saved = await receive_files(content_type, chunks(body, 7), directory=tmp_path / "up", max_file_bytes=1000)

    assert [(f.name, f.size) for f in saved] == [("a.md", 11), ("b.txt", 5)]
    assert listing(tmp_path / "up") == ["a.md", "b.txt"]
    assert (tmp_path / "up" / "a.md").read_bytes() == b"# A\n\nalpha\n"
    assert not (tmp_path / "b.txt").exists()


async def test_a_file_streams_to_disk_while_the_body_is_still_arriving(tmp_path: Path) -> None:
    big = b"x" * (6 * 1024 * 1024)
    content_type, body = multipart([("big.txt", big)])
    directory = tmp_path / "up"
    on_disk_midway: list[int] = []

    async def watched() -> AsyncIterator[bytes]:
        async for chunk in chunks(body):
            yield chunk
            if not on_disk_midway and len(chunk) and directory.exists():
                written = sum(p.stat().st_size for p in directory.iterdir())
                if written >= 2 * 1024 * 1024:
                    on_disk_midway.append(written)

    saved = await receive_files(content_type, watched(), directory=directory, max_file_bytes=len(big))

    assert saved[0].size == len(big)
    assert on_disk_midway and on_disk_midway[0] < len(big)


async def test_a_file_over_the_limit_stops_the_upload_and_leaves_nothing(tmp_path: Path) -> None:
    content_type, body = multipart([("ok.md", b"fine"), ("big.txt", b"y" * 5000)])
    read: list[int] = []

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in chunks(body, 256):
            read.append(len(chunk))
            yield chunk

    with pytest.raises(PayloadTooLargeError, match=r"big\.txt"):
        await receive_files(content_type, counted(), directory=tmp_path / "up", max_file_bytes=1000)

    assert listing(tmp_path / "up") == []
    assert sum(read) < len(body) - 3000  # refused as the bytes came, not after the whole body


async def test_a_re_upload_replaces_the_file(tmp_path: Path) -> None:
    for text in (b"first", b"second"):
        content_type, body = multipart([("same.md", text)])
        await receive_files(content_type, chunks(body), directory=tmp_path, max_file_bytes=100)
    assert listing(tmp_path) == ["same.md"]
    assert (tmp_path / "same.md").read_bytes() == b"second"


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: multipart([(f"f{i}.md", b"x") for i in range(4)]), PayloadTooLargeError),
        (lambda: multipart([("a.md", b"x"), ("a.md", b"y")]), InvalidInputError),
        (lambda: multipart([("a.md", b"x")], fields={"note": "hello"}), InvalidInputError),
        (lambda: multipart([("a.exe", b"x")]), UnsupportedFormatError),
        (lambda: ("application/json", b"{}"), UnsupportedFormatError),
        (lambda: ("multipart/form-data", b"--x\r\n"), InvalidInputError),
        (lambda: ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disp"), InvalidInputError),
        (lambda: ("multipart/form-data; boundary=xyz", b"--xyz--\r\n"), InvalidInputError),
    ],
    ids=["too-many", "twice", "field", "type", "not-multipart", "no-boundary", "truncated", "no-files"],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    tmp_path: Path, make: Callable[[], tuple[str, bytes]], error: type[Exception]
) -> None:
    content_type, body = make()
    with pytest.raises(error):
        await receive_files(
            content_type, chunks(body), directory=tmp_path / "up", max_file_bytes=100, max_files=3
        )
    assert listing(tmp_path / "up") == []
