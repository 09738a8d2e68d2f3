"""The crawl itself: a frontier of URLs, workers that fetch them politely, and what they found.

Breadth first (a page cap keeps the shallowest pages). Start URLs that turn out to be sitemaps
(or sitemap indexes) seed the frontier with their entries. Documents the corpus already holds
are fetched conditionally; those the links no longer reach are revisited at the end, so that a
page which now 404s, redirects away or left the scope is reported gone. Identical pages under
different URLs collapse into one, the shortest URL, so the choice is the same on every crawl.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol
from urllib.parse import urlsplit

from core import ids
from core.errors import ExtractionError
from core.settings import CrawlSettings
from ingestion.crawl.fetcher import FetchFailed, HttpFetcher, Refused, Response
from ingestion.crawl.pages import read_page
from ingestion.crawl.robots import (
    ALLOW_ALL,
    MAX_ROBOTS_BYTES,
    RobotsRules,
    parse_robots,
    robots_directives,
)
from ingestion.crawl.sitemaps import gunzip, parse_sitemap
from ingestion.crawl.state import PageRecord
from ingestion.crawl.urls import Scope, document_name, origin, try_normalise

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GONE = frozenset({404, 410})
# Bounds the work one crawl's sitemaps can cause (an index may list up to 50,000 of them).
MAX_SITEMAPS = 100


class Kind(Enum):
    START = "start"  # a start URL: a page, a sitemap or a sitemap index
    SITEMAP = "sitemap"  # a sitemap named by a sitemap index
    PAGE = "page"  # a link or sitemap entry
    REVISIT = "revisit"  # a document from an earlier crawl no link reached this time


class CrawlProgress(Protocol):
    """Receives each page as it is fetched (the CLI draws a bar from it)."""

    def fetched(self, url: str, outcome: str, *, done: int, total: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Page:
    """A document to ingest: fetched now (``data``), or unchanged since the last crawl (None)."""

    url: str
    record: PageRecord
    data: bytes | None


@dataclass(slots=True)
class CrawlOutcome:
    pages: dict[str, Page] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)
    """Documents of the corpus this crawl found gone: URL -> why."""
    failures: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    pages_fetched: int = 0
    not_modified: int = 0
    bytes_downloaded: int = 0


class Crawler:
    """One crawl over a scope.

    ``indexed``: URLs the corpus holds documents for; ``own``: those earlier runs of this crawl
    stored (only these are gone when they leave the scope: another crawl's are not ours to judge);
    ``records``: what earlier crawls learned of them (only records still true of the index).
    """

    def __init__(
        self,
        settings: CrawlSettings,
        fetcher: HttpFetcher,
        scope: Scope,
        *,
        indexed: frozenset[str] = frozenset(),
        own: frozenset[str] = frozenset(),
        records: Mapping[str, PageRecord] | None = None,
        max_bytes: int,
        progress: CrawlProgress | None = None,
        emit: Callable[[Page], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._fetcher = fetcher
        self._scope = scope
        self._indexed = indexed
        self._own = own
        self._records = records or {}
        self._max_bytes = max_bytes
        self._progress = progress
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, Kind]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._seen: set[str] = set()
        self._robots: dict[str, RobotsRules | FetchFailed] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._sitemaps = 0
        self._planned = 0
        self._emit = emit
        self._found: dict[str, PageRecord] = {}  # every page found, by URL (records only)
        self._by_hash: dict[str, str] = {}  # content hash -> URL of the page kept for it
        self._held: dict[str, list[Page]] = {}  # canonical URL not yet found -> pages naming it
        self.outcome = CrawlOutcome()

    async def run(self, starts: list[str]) -> CrawlOutcome:
        """Crawl from ``starts`` (normalised URLs) and return what was found."""
        for url in starts:
            self._enqueue(url, 0, Kind.START)
        workers = [asyncio.create_task(self._work()) for _ in range(self._settings.concurrency)]
        try:
            await self._queue.join()
            for url in sorted(self._indexed - self._seen):
                if self._scope.contains(url):
                    self._enqueue(url, 0, Kind.REVISIT)
                elif url in self._own:
                    self.outcome.gone[url] = "out of the crawl's scope"
            await self._queue.join()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        # Pages whose canonical URL never turned up are documents under their own URL.
        for pages in list(self._held.values()):
            for page in pages:
                await self._keep(page)
        self._held.clear()
        return self.outcome

    def _enqueue(self, url: str, depth: int, kind: Kind) -> None:
        if url in self._seen:
            return
        self._seen.add(url)
        if kind is not Kind.SITEMAP:
            self._planned += 1
        self._queue.put_nowait((depth, next(self._order), url, kind))

    async def _work(self) -> None:
        while True:
            depth, _, url, kind = await self._queue.get()
            try:
                outcome = await self._visit(url, depth, kind)
            except FetchFailed as exc:
                outcome = self._fail(url, exc.message)
            except Exception as exc:
                # One bad page fails alone, never the crawl.
                outcome = self._fail(url, f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()
            if outcome and self._progress is not None:
                total = min(self._planned, self._settings.max_pages)
                self._progress.fetched(url, outcome, done=self.outcome.pages_fetched, total=total)

    def _fail(self, url: str, message: str) -> str:
        self.outcome.failures[url] = message
        return "failed"

    async def _visit(self, url: str, depth: int, kind: Kind) -> str | None:
        """Fetch one URL and act on the response; returns the outcome shown as progress."""
        start = kind is Kind.START
        if not (await self._robots_for(url)).allows(_path(url)):
            return self._missing(url, "disallowed by robots.txt", start=start)
        if kind is Kind.SITEMAP:
            if self._sitemaps >= MAX_SITEMAPS:
                self.outcome.skipped["sitemap over the limit"] += 1
                return None
            self._sitemaps += 1
        else:
            if self.outcome.pages_fetched >= self._settings.max_pages:
                self.outcome.skipped["over max pages"] += 1
                return None
            self.outcome.pages_fetched += 1
        final, response = await self._follow(url, start=start)
        if final is None or response is None:
            return "skipped"
        if kind in (Kind.START, Kind.SITEMAP) and response.body is not None:
            if self._read_sitemap(final, response.body):
                if start:
                    self.outcome.pages_fetched -= 1
                return None
            if kind is Kind.SITEMAP:
                self.outcome.skipped["not a sitemap"] += 1
                return "skipped"
        if response.status == 304:
            return await self._not_modified(final, depth, kind)
        if response.status in _GONE:
            return self._missing(final, f"HTTP {response.status}", start=start)
        if response.body is None:
            raise FetchFailed(f"HTTP {response.status}")
        return await self._page(final, response, depth, kind)

    async def _follow(self, url: str, *, start: bool) -> tuple[str | None, Response | None]:
        """Fetch ``url``, following redirects that stay in scope; (None, None) if it led nowhere.

        A start URL's redirect is always followed and brings its site into scope (http to https,
        a bare domain to www...).
        """
        current = url
        for hop in range(self._settings.max_redirects + 1):
            if hop and not (await self._robots_for(current)).allows(_path(current)):
                self._missing(current, "disallowed by robots.txt", start=start)
                return None, None
            record = self._records.get(current)
            headers = record.conditional_headers() if record else {}
            response = await self._fetcher.get(current, headers=headers, max_bytes=self._max_bytes)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return current, response
            target = try_normalise(location, current)
            if target is None:
                raise FetchFailed(f"HTTP {response.status} to a URL that cannot be crawled: {location}")
            if start:
                self._scope = replace(self._scope, origins=self._scope.origins | {origin(target)})
            elif not self._scope.contains(target):
                self._missing(current, f"redirects out of scope to {target}", counter="redirect out of scope")
                return None, None
            if target in self._seen:
                # The target is fetched under its own URL (or has been).
                self._missing(current, f"moved to {target}", counter="redirect to a URL already seen")
                return None, None
            self._seen.add(target)
            if current in self._indexed:
                self.outcome.gone[current] = f"moved to {target}"
            current = target
        raise FetchFailed(f"more than {self._settings.max_redirects} redirects")

    def _missing(self, url: str, reason: str, *, counter: str | None = None, start: bool = False) -> str:
        """A URL that gives no document: gone if the corpus holds it, else skipped (or failed)."""
        if url in self._indexed:
            self.outcome.gone[url] = reason
            return "gone"
        if start:
            raise FetchFailed(reason)
        self.outcome.skipped[counter or reason] += 1
        return "skipped"

    async def _robots_for(self, url: str) -> RobotsRules:
        site = origin(url)
        lock = self._robots_locks.setdefault(site, asyncio.Lock())
        async with lock:
            if site not in self._robots:
                self._robots[site] = await self._fetch_robots(site)
        rules = self._robots[site]
        if isinstance(rules, FetchFailed):
            raise rules
        return rules

    async def _fetch_robots(self, site: str) -> RobotsRules | FetchFailed:
        """The site's rules; a failure when robots.txt is unreachable.

        RFC 9309 2.3.1.4 forbids crawling a site whose robots.txt is unreachable. Its pages
        then fail rather than being disallowed, so an outage never reports them gone.
        """
        url = f"{site}/robots.txt"
        try:
            for _hop in range(5):
                response = await self._fetcher.get(url, max_bytes=MAX_ROBOTS_BYTES)
                location = response.headers.get("location")
                target = try_normalise(location, url) if location else None
                if response.status not in _REDIRECTS or target is None:
                    break
                url = target
            else:
                return ALLOW_ALL
        except Refused as exc:
            return exc
        except FetchFailed as exc:
            return FetchFailed(f"robots.txt is unreachable ({exc.message}): the site is not crawled")
        if response.body is None:
            if 400 <= response.status < 500:
                return ALLOW_ALL
            return FetchFailed(f"robots.txt is unreachable (HTTP {response.status}): the site is not crawled")
        rules = parse_robots(response.body.decode("utf-8", errors="replace"))
        if rules.crawl_delay:
            self._fetcher.set_delay(site, min(rules.crawl_delay, self._settings.max_crawl_delay_s))
        return rules

    def _read_sitemap(self, url: str, body: bytes) -> bool:
        """Enqueue the entries if ``body`` is a sitemap or sitemap index; False if it is not."""
        try:
            sitemap = parse_sitemap(gunzip(body, self._max_bytes))
        except ExtractionError as exc:
            raise FetchFailed(f"bad sitemap: {exc.message}") from None
        if sitemap is None:
            return False
        for location in sitemap.locations:
            entry = try_normalise(location, url)
            if entry is None:
                self.outcome.skipped["bad sitemap entry"] += 1
                continue
            if sitemap.kind == "sitemapindex":
                self._enqueue(entry, 0, Kind.SITEMAP)
            elif self._scope.contains(entry):
                self._enqueue(entry, 0, Kind.PAGE)
            else:
                self.outcome.skipped["sitemap entry out of scope"] += 1
        return True

    async def _not_modified(self, url: str, depth: int, kind: Kind) -> str:
        record = self._records.get(url)
        if record is None:
            raise FetchFailed("HTTP 304 to a request that was not conditional")
        self.outcome.not_modified += 1
        if record.canonical:
            self._enqueue(record.canonical, depth, Kind.PAGE)
        self._follow_links(record.links, depth, kind)
        await self._offer(Page(url, record, None))
        return "not modified"

    async def _page(self, url: str, response: Response, depth: int, kind: Kind) -> str:
        assert response.body is not None
        body = response.body
        self.outcome.bytes_downloaded += len(body)
        name = document_name(url, response.headers.get("content-type"))
        if name is None:
            return self._missing(
                url, "not a document Lore reads", counter="not a document", start=kind is Kind.START
            )
        header = robots_directives([response.headers.get("x-robots-tag", "")])
        noindex, nofollow = "noindex" in header, "nofollow" in header
        links: tuple[str, ...] = ()
        canonical = None
        if name.endswith(".html"):
            info = await asyncio.to_thread(read_page, body, url)
            noindex, nofollow = noindex or info.noindex, nofollow or info.nofollow
            links = () if nofollow else info.links
            if info.canonical and info.canonical != url and self._scope.contains(info.canonical):
                canonical = info.canonical
                self._enqueue(canonical, depth, Kind.PAGE)
        self._follow_links(links, depth, kind)
        if noindex:
            return self._missing(url, "noindex", counter="noindex")
        record = PageRecord(
            content_hash=ids.content_hash(body),
            name=name,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            links=links,
            canonical=canonical,
        )
        await self._offer(Page(url, record, body))
        return "fetched"

    def _follow_links(self, links: tuple[str, ...], depth: int, kind: Kind) -> None:
        if kind is Kind.REVISIT or depth >= self._settings.max_depth:
            return
        for link in links:
            if link not in self._seen and self._scope.contains(link):
                self._enqueue(link, depth + 1, Kind.PAGE)

    async def _offer(self, page: Page) -> None:
        """Pass a found page on as a document, unless its canonical URL or its content is another's.

        Decided as pages arrive, so bodies are not held until the crawl ends: a page naming a
        canonical URL not yet found waits for it (dropped once it is found, kept if it never is or
        names a canonical of its own: chains are not followed); of pages with the same content,
        the one with the shortest URL is the document.
        """
        self._found[page.url] = page.record
        canonical = page.record.canonical
        if canonical is not None:
            target = self._found.get(canonical)
            if target is None:
                self._held.setdefault(canonical, []).append(page)
            elif target.canonical is None:
                self._missing(page.url, f"canonical URL is {canonical}", counter="canonical elsewhere")
            else:
                await self._keep(page)
        for waiting in self._held.pop(page.url, []):
            if canonical is None:
                self._missing(waiting.url, f"canonical URL is {page.url}", counter="canonical elsewhere")
            else:
                await self._keep(waiting)
        if canonical is None:
            await self._keep(page)

    async def _keep(self, page: Page) -> None:
        holder = self._by_hash.get(page.record.content_hash)
        if holder is not None:
            if (len(page.url), page.url) >= (len(holder), holder):
                self._missing(page.url, f"duplicate of {holder}", counter="duplicate content")
                return
            # The better URL for content already passed on: the earlier document is retired.
            del self.outcome.pages[holder]
            self.outcome.gone[holder] = f"duplicate of {page.url}"
            self.outcome.skipped["duplicate content"] += 1
        self._by_hash[page.record.content_hash] = page.url
        if self._emit is None:
            self.outcome.pages[page.url] = page
            return
        self.outcome.pages[page.url] = Page(page.url, page.record, None)
        await self._emit(page)


def _path(url: str) -> str:
    """Path and query of a URL, as robots.txt rules match them."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
