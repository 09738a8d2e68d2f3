"""Identifiers: what a corpus may be named, and derived IDs (the same source and content always
give the same IDs)."""

from __future__ import annotations

import hashlib
import re
import uuid

from core.errors import InvalidInputError

# A new corpus's name: a letter or digit, then up to 63 letters, digits, dots, dashes or
# underscores. It travels in URLs, query strings, CLI arguments and logs without quoting.
CORPUS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CORPUS_NAME = re.compile(CORPUS_NAME_PATTERN)


def check_corpus_name(name: str) -> str:
    """``name`` when it may name a new corpus; :class:`InvalidInputError` otherwise.

    Corpora made before the rule keep their names: only new ones are checked.
    """
    if not _CORPUS_NAME.fullmatch(name):
        raise InvalidInputError(
            f"a corpus name is a letter or digit, then up to 63 letters, digits, '.', '-' or '_'; "
            f"not {name[:80]!r}"
        )
    return name


# Fixed namespace so IDs are stable across machines and releases.
_NAMESPACE = uuid.UUID("6f1c2a0e-7d4b-4c1e-9a53-2b8d1f0e4c77")


def content_hash(data: bytes | str) -> str:
    """SHA-256 hex digest of bytes or UTF-8 text."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def document_id(corpus: str, source_uri: str) -> str:
    """Stable document ID from the corpus name and the document's source URI."""
    return str(uuid.uuid5(_NAMESPACE, f"doc\x00{corpus}\x00{source_uri}"))


def chunk_id(document_id: str, text: str, ordinal: int, chunker_version: str) -> str:
    """Stable chunk ID from its document, content, position and the chunker that made it.

    The ordinal keeps two identical passages of one document apart.
    """
    digest = content_hash(text)
    return str(
        uuid.uuid5(_NAMESPACE, f"chunk\x00{document_id}\x00{ordinal}\x00{digest}\x00{chunker_version}")
    )
