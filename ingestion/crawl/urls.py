"""URLs: canonical form, crawl scope and the file name a fetched document is read as.

Pure functions over strings. Two spellings of one resource normalise to one URL, so the crawler
fetches it once and the document keeps one ID.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from core.errors import InvalidInputError
from ingestion.extract import SUPPORTED_SUFFIXES

# What a crawl follows: every format Lore reads but images, which on web pages are logos, icons
# and photos far more often than scans (upload scans, or ingest them from files).
_CRAWLED_SUFFIXES = frozenset(s for s, kind in SUPPORTED_SUFFIXES.items() if kind != "image")

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters left as they are when re-quoting a path or query: reserved ones keep their meaning
# and "%" keeps existing escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# Links with these suffixes are pages even though no extractor is named for them.
_PAGE_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".shtml", ".php", ".asp", ".aspx", ".jsp", ".cgi"})
_TYPE_SUFFIXES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
    "application/x-pdf": ".pdf",
}
# Types servers send for files they do not know: the URL's suffix says more.
_VAGUE_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream"})


def normalise_url(url: str, base: str | None = None) -> str:
    """The canonical form of ``url`` (resolved against ``base``); raises for non-http(s) URLs.

    Scheme and host lower-cased, default port and fragment dropped, user info dropped, dot
    segments resolved, escapes upper-cased (unreserved ones decoded), query parameters sorted by
    name (repeats keep their order).
    """
    if base is not None:
        url = urljoin(base, url.strip())
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"not a valid URL: {url!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidInputError(f"only http and https URLs can be crawled, not {url!r}")
    host = _normalise_host(parts.hostname or "", url)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _normalise_escapes(_quote(_remove_dot_segments(parts.path or "/"), _PATH_SAFE))
    query = _normalise_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def try_normalise(url: str, base: str | None = None) -> str | None:
    """:func:`normalise_url`, or None for a URL that cannot be crawled."""
    try:
        return normalise_url(url, base)
    except InvalidInputError:
        return None


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a normalised URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def host_of(url: str) -> str:
    """The host of a URL, lower-case, without brackets or port."""
    return (urlsplit(url).hostname or "").rstrip(".")


def _normalise_host(host: str, url: str) -> str:
    host = host.rstrip(".").lower()
    if not host:
        raise InvalidInputError(f"the URL {url!r} names no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInputError(f"the URL {url!r} has an invalid host name") from None
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal (unlike ``posixpath.normpath`` it keeps empty segments)."""
    segments = path.split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/" + "/".join(out)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result


def _quote(text: str, safe: str) -> str:
    out = []
    for char in text:
        if char in _UNRESERVED or char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def _normalise_escapes(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    # A "%" not starting an escape is a literal percent sign.
    return _ESCAPE.sub(fix, re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", text))


def _normalise_query(query: str) -> str:
    pairs = [_normalise_escapes(_quote(p, _QUERY_SAFE)) for p in query.split("&") if p]
    pairs.sort(key=lambda pair: pair.split("=", 1)[0])
    return "&".join(pairs)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which URLs a crawl may visit: the start URLs' origins, then include and exclude patterns."""

    origins: frozenset[str]
    same_site: bool = True
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def build(
        cls, start_urls: Iterable[str], *, same_site: bool, include: Sequence[str], exclude: Sequence[str]
    ) -> Scope:
        """A scope for ``start_urls`` (normalised); raises for a bad pattern."""
        if not same_site and not include:
            raise InvalidInputError("a crawl that leaves the start sites needs include patterns")
        return cls(
            origins=frozenset(origin(u) for u in start_urls),
            same_site=same_site,
            include=_compile(include),
            exclude=_compile(exclude),
        )

    def contains(self, url: str) -> bool:
        """Whether ``url`` (normalised) is in scope."""
        if self.same_site and origin(url) not in self.origins:
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)


def _compile(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise InvalidInputError(f"bad URL pattern {pattern!r}: {exc}") from None
    return tuple(compiled)


def may_be_document(url: str) -> bool:
    """Whether a link may lead to a page or document Lore reads (images, archives... are not)."""
    suffix = _suffix(url)
    return not suffix or suffix in _PAGE_SUFFIXES or suffix in _CRAWLED_SUFFIXES


def document_name(url: str, content_type: str | None) -> str | None:
    """The file name whose suffix picks the extractor for ``url``; None when Lore cannot read it.

    The Content-Type decides (a page at ``/guide/`` is HTML) unless it is vague and the URL's
    suffix names a format Lore reads (``notes.md`` served as text/plain is Markdown).
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    url_suffix = _suffix(url)
    if url_suffix in _CRAWLED_SUFFIXES and mime in _VAGUE_TYPES:
        suffix: str | None = url_suffix
    elif mime:
        suffix = _TYPE_SUFFIXES.get(mime) or mimetypes.guess_extension(mime, strict=False)
    else:
        suffix = url_suffix
    if suffix not in _CRAWLED_SUFFIXES:
        return None
    segment = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    stem = PurePosixPath(segment).stem if segment else ""
    stem = re.sub(r"[^\w.\- ]+", "_", stem).strip(" .") or host_of(url) or "index"
    return f"{stem[:100]}{suffix}"


def _suffix(url: str) -> str:
    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    return PurePosixPath(unquote(segment)).suffix.lower()
