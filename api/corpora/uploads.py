"""Uploaded files: a multipart body streamed to disk in the corpus's upload folder, never whole in memory.

Each file streams into a hidden temporary file beside its final name, counted against the size limit
as it comes; only once the whole body has arrived do the files take their names (``os.replace``).
A refused or broken upload so leaves nothing behind, and uploading a name again replaces that file
(and so that document, whose ID derives from the path). A file whose document then fails to ingest
is removed too (:func:`remove_saved`), and so is every file of a queued upload once its bytes are
on the job: only the documents Lore holds keep a file here.
"""

from __future__ import annotations

import asyncio
import os
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from core.errors import BackendError, InvalidInputError, PayloadTooLargeError, UnsupportedFormatError
from ingestion.extract import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FILES = 100
"""Most files in one upload request."""
_FLUSH_BYTES = 1024 * 1024
_MAX_PART_HEADER_BYTES = 16 * 1024
_MAX_NAME_BYTES = 255
_TEMP_PREFIX = ".upload-"


@dataclass(frozen=True, slots=True)
class SavedFile:
    name: str
    path: Path
    size: int


def uploads_root(data_dir: Path) -> Path:
    """Where uploaded files live, one folder per corpus."""
    return data_dir / "uploads"


def upload_dir(data_dir: Path, corpus_id: str) -> Path:
    """Where a corpus's uploaded files live (keyed by the corpus ID, which never changes)."""
    return uploads_root(data_dir) / corpus_id


def safe_file_name(raw: str) -> str:
    """The name an uploaded file is kept under: its last path component; raises for an unusable one."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if name in ("", ".", ".."):
        raise InvalidInputError(f"unusable file name {raw!r}")
    if name.startswith("."):
        raise InvalidInputError(f"file names may not start with a dot: {raw!r}")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise InvalidInputError(f"file names may not hold control characters: {raw!r}")
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise InvalidInputError(f"file names may have at most {_MAX_NAME_BYTES} bytes: {raw!r}")
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormatError(
            f"{name}: unsupported file type {suffix or '(none)'!r}; supported: {supported}"
        )
    return name


@dataclass(slots=True)
class _Part:
    name: str
    temp: Path
    size: int = 0
    buffer: bytearray = field(default_factory=bytearray)
    file: BinaryIO | None = None
    ended: bool = False
    closed: bool = False


class _Receiver:
    """Multipart callbacks (synchronous): check each part as it comes, queue its bytes for writing."""

    def __init__(self, directory: Path, *, max_file_bytes: int, max_files: int) -> None:
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.parts: list[_Part] = []
        self.complete = False
        self._disposition = b""
        self._header_name = b""
        self._header_value = b""
        self._header_bytes = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._disposition, self._header_bytes = b"", 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._count_header(end - start)

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header(end - start)

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > _MAX_PART_HEADER_BYTES:
            raise InvalidInputError(f"a part's headers exceed {_MAX_PART_HEADER_BYTES} bytes")

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        kind, options = parse_options_header(self._disposition.decode("latin-1"))
        if kind != b"form-data" or b"filename" not in options:
            raise InvalidInputError("send files only: every part needs a Content-Disposition with a filename")
        if len(self.parts) >= self.max_files:
            raise PayloadTooLargeError(f"at most {self.max_files} files may be sent in one upload")
        name = safe_file_name(_decode(options[b"filename"]))
        if any(part.name == name for part in self.parts):
            raise InvalidInputError(f"the file name {name!r} is sent twice")
        self.parts.append(_Part(name=name, temp=self.directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}.part"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.size += end - start
        if part.size > self.max_file_bytes:
            raise PayloadTooLargeError(f"{part.name} is larger than the limit of {self.max_file_bytes} bytes")
        part.buffer += data[start:end]

    def on_part_end(self) -> None:
        self.parts[-1].ended = True

    def on_end(self) -> None:
        self.complete = True

    async def write(self) -> None:
        """Write what the parser queued: full buffers, and whatever is left of ended parts."""
        for part in self.parts:
            if part.closed:
                continue
            if part.file is None:
                part.file = await asyncio.to_thread(_open_new, part.temp)
            if part.buffer and (part.ended or len(part.buffer) >= _FLUSH_BYTES):
                data = bytes(part.buffer)
                part.buffer.clear()
                await asyncio.to_thread(part.file.write, data)
            if part.ended and not part.buffer:
                await asyncio.to_thread(part.file.close)
                part.closed = True

    def commit(self) -> list[SavedFile]:
        saved = []
        for part in self.parts:
            final = self.directory / part.name
            os.replace(part.temp, final)
            saved.append(SavedFile(name=part.name, path=final, size=part.size))
        return saved

    def discard(self) -> None:
        for part in self.parts:
            if part.file is not None and not part.closed:
                part.file.close()
            part.temp.unlink(missing_ok=True)


async def remove_saved(paths: Iterable[Path]) -> None:
    """Delete saved upload files: their documents failed, or their bytes travel with a queued job."""
    for path in paths:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _open_new(path: Path) -> BinaryIO:
    return path.open("xb")


def _decode(value: bytes) -> str:
    # Clients send file names as UTF-8 in practice; anything else is read byte for byte.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


async def receive_files(
    content_type: str,
    body: AsyncIterator[bytes],
    *,
    directory: Path,
    max_file_bytes: int,
    max_files: int = MAX_FILES,
) -> list[SavedFile]:
    """Stream the files of a ``multipart/form-data`` body into ``directory``; keep all or none.

    Raises :class:`PayloadTooLargeError` as soon as a file passes ``max_file_bytes`` or the files
    pass ``max_files``, :class:`InvalidInputError` for a malformed body, a part that is not a file or
    an unusable name, :class:`UnsupportedFormatError` for a type Lore cannot ingest.
    """
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise UnsupportedFormatError("send the files as multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInputError("the multipart/form-data content type names no boundary")
    receiver = _Receiver(directory, max_file_bytes=max_file_bytes, max_files=max_files)
    try:
        try:
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            parser = MultipartParser(boundary, receiver.callbacks())
            async for chunk in body:
                parser.write(chunk)
                await receiver.write()
            parser.finalize()
            await receiver.write()
            if not receiver.complete:
                raise InvalidInputError("the multipart body ended before its closing boundary")
            if not receiver.parts:
                raise InvalidInputError("send at least one file")
            return await asyncio.to_thread(receiver.commit)
        except FormParserError as exc:
            raise InvalidInputError(f"malformed multipart body: {exc}") from None
        except OSError as exc:
            raise BackendError(f"the upload could not be saved: {exc}") from exc
    except BaseException:
        # Synchronous on purpose: it must run even when the request is being cancelled.
        receiver.discard()
        raise
