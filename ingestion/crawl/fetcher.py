"""The crawler's HTTP adapter (aiohttp): one hop per call, guarded, polite, retried, size-capped.

Redirects are not followed here: the crawler checks each hop's scope and address first.
Politeness is per host: a few requests at once, and a least interval between their starts that
a robots.txt Crawl-delay, a 429 or a 503 can stretch.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from core.errors import InvalidInputError
from core.settings import CrawlSettings
from ingestion.crawl.addresses import AddressGuard
from ingestion.crawl.robots import user_agent

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_KEPT_HEADERS = ("content-type", "etag", "last-modified", "location", "retry-after", "x-robots-tag")
_ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/*;q=0.8,*/*;q=0.5"


class FetchFailed(Exception):
    """One URL could not be fetched; the crawl records the reason and goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(FetchFailed):
    """The SSRF guard refused the URL's address."""


@dataclass(frozen=True, slots=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    """The headers the crawler reads, lower-case names."""
    body: bytes | None
    """The body of a 2xx response; None for other statuses."""


class GuardedResolver(AbstractResolver):
    """aiohttp's only name lookup: checked addresses are the ones it connects to."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._guard.resolve(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for ip in addresses
            if family in (socket.AF_UNSPEC, socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
        ]

    async def close(self) -> None:
        return None


class _HostGate:
    """A host's politeness: concurrent requests bounded, request starts spaced by ``delay``."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self.delay = delay
        self._slots = asyncio.Semaphore(concurrency)
        self._turn = asyncio.Lock()
        self._next = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            async with self._turn:
                wait = self._next - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next = time.monotonic() + self.delay
            yield

    def hold(self, seconds: float) -> None:
        """No request to this host starts for ``seconds`` (the server asked for a pause)."""
        self._next = max(self._next, time.monotonic() + seconds)


class HttpFetcher:
    """Fetches URLs for the crawler; use as an async context manager."""

    def __init__(self, settings: CrawlSettings, guard: AddressGuard) -> None:
        self._settings = settings
        self._guard = guard
        self._gates: dict[str, _HostGate] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpFetcher:
        s = self._settings
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._guard),
            limit=s.concurrency,
            limit_per_host=s.per_host_concurrency,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.timeout_s, connect=s.connect_timeout_s),
            headers={"User-Agent": user_agent(), "Accept": _ACCEPT},
            # No proxy from the environment (it would connect where the guard did not look),
            # and no cookies: every request stands alone.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_delay(self, url: str, seconds: float) -> None:
        """Space requests to ``url``'s host at least ``seconds`` apart."""
        gate = self._gate(url)
        gate.delay = max(gate.delay, seconds)

    def _gate(self, url: str) -> _HostGate:
        key = urlsplit(url).netloc
        if key not in self._gates:
            s = self._settings
            self._gates[key] = _HostGate(s.per_host_concurrency, s.per_host_delay_s)
        return self._gates[key]

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int) -> Response:
        """GET one URL (no redirects followed), retrying 429, 5xx and network failures.

        Raises :class:`FetchFailed` when every try failed or the body is over ``max_bytes``.
        """
        s = self._settings
        gate = self._gate(url)
        problem = ""
        for attempt in range(s.retries + 1):
            wait = s.backoff_s * 2**attempt * random.uniform(1.0, 1.25)
            async with gate.slot():
                try:
                    response = await self._request(url, headers or {}, max_bytes)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    problem = _describe(exc, s.timeout_s)
                else:
                    if response.status not in RETRY_STATUSES:
                        return response
                    problem = f"HTTP {response.status}"
                    asked = retry_after(response.headers.get("retry-after"))
                    if asked is not None and asked > s.max_retry_after_s:
                        raise FetchFailed(
                            f"{problem}: the server asks to retry after {asked:.0f} s, "
                            f"more than the {s.max_retry_after_s:.0f} s allowed"
                        )
                    wait = wait if asked is None else asked
            if attempt < s.retries:
                # The whole host pauses: a 429 or 503 is about the client, not one page.
                gate.hold(wait)
        tries = s.retries + 1
        raise FetchFailed(f"{problem} (after {tries} {'try' if tries == 1 else 'tries'})")

    async def _request(self, url: str, headers: Mapping[str, str], max_bytes: int) -> Response:
        assert self._session is not None, "use HttpFetcher as an async context manager"
        try:
            # aiohttp connects to an IP address in the URL without asking the resolver.
            self._guard.check_literal(urlsplit(url).hostname or "")
            async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                kept = {name: resp.headers[name] for name in _KEPT_HEADERS if name in resp.headers}
                body = None
                if 200 <= resp.status < 300:
                    too_big = f"over the limit of {max_bytes} bytes"
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise FetchFailed(f"the response has {resp.content_length} bytes, {too_big}")
                    buffer = bytearray()
                    async for piece in resp.content.iter_chunked(64 * 1024):
                        buffer += piece
                        if len(buffer) > max_bytes:
                            # Leaving the block drops the connection with the rest unread.
                            raise FetchFailed(f"the response is {too_big}")
                    body = bytes(buffer)
                return Response(url, resp.status, kept, body)
        except InvalidInputError as exc:
            raise Refused(exc.message) from None


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks to wait (it gives seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return f"{type(exc).__name__}: {exc}"
