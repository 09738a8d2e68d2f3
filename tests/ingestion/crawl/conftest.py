"""A web site the crawl tests serve on 127.0.0.1, reached as http://site.test:PORT through a fake DNS."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.settings import CrawlSettings
from ingestion.crawl.addresses import AddressGuard, AllowList
from ingestion.crawl.crawler import Crawler, CrawlOutcome
from ingestion.crawl.fetcher import HttpFetcher
from ingestion.crawl.state import PageRecord
from ingestion.crawl.urls import Scope, normalise_url

# The fake DNS: names the tests use, and where they lead.
NAMES = {
    "site.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "intranet.test": ["10.1.2.3"],
    "mixed.test": ["93.184.216.34", "192.168.1.20"],
}


async def fake_lookup(host: str, port: int) -> Sequence[str]:
    if host not in NAMES:
        raise OSError(f"unknown test host {host}")
    return NAMES[host]


@dataclass
class Reply:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html"
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Site:
    """Pages by path (with query); a list of replies is served one per hit, the last one repeating."""

    pages: dict[str, Reply | list[Reply]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    times: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://site.test:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def paths(self, urls: Iterable[str]) -> list[str]:
        """``urls`` of this site as sorted paths."""
        return sorted(u.removeprefix(self.base) for u in urls)

    @staticmethod
    def reply(body: bytes | str = b"", **fields: Any) -> Reply:
        return Reply(body, **fields)

    @staticmethod
    def html(title: str, *links: str, body: str = "", head: str = "", **fields: Any) -> Reply:
        """An HTML page with a title, some text and links."""
        anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
        text = body or f"This page is about {title}, and nothing else."
        return Reply(
            f"<html><head><title>{title}</title>{head}</head><body><main><h1>{title}</h1><p>{text}</p>"
            f"<ul>{anchors}</ul></main></body></html>",
            **fields,
        )

    async def crawl(
        self,
        *starts: str,
        indexed: frozenset[str] = frozenset(),
        own: frozenset[str] = frozenset(),
        records: Mapping[str, PageRecord] | None = None,
        **overrides: Any,
    ) -> CrawlOutcome:
        """Run the crawler alone (no ingestion) from ``starts`` with :func:`crawl_settings`."""
        settings = crawl_settings(**overrides)
        urls = [normalise_url(u) for u in starts or [self.url("/")]]
        scope = Scope.build(
            urls,
            same_site=settings.same_site,
            include=settings.include_patterns,
            exclude=settings.exclude_patterns,
        )
        guard = AddressGuard(AllowList.parse(settings.allow_hosts), fake_lookup)
        async with HttpFetcher(settings, guard) as fetcher:
            crawler = Crawler(
                settings,
                fetcher,
                scope,
                indexed=indexed,
                own=own,
                records=records,
                max_bytes=settings.max_page_bytes,
            )
            return await crawler.run(urls)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        self.hits[path] += 1
        self.times[path].append(time.monotonic())
        found = self.pages.get(path)
        if found is None:
            return web.Response(status=404, text="not found")
        reply = found if isinstance(found, Reply) else found[min(self.hits[path], len(found)) - 1]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        headers = dict(reply.headers)
        if reply.etag and reply.status == 200:
            headers["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == headers["ETag"]:
                self.not_modified[path] += 1
                return web.Response(status=304, headers=headers)
        if not reply.chunked:
            return web.Response(
                status=reply.status, body=body, headers=headers, content_type=reply.content_type
            )
        stream = web.StreamResponse(status=reply.status, headers=headers)
        stream.content_type = reply.content_type
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        for start in range(0, len(body), 4096):
            await stream.write(body[start : start + 4096])
        await stream.write_eof()
        return stream


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site.port = server.port or 0
    try:
        yield site
    finally:
        await server.close()


def crawl_settings(**overrides: Any) -> CrawlSettings:
    """Fast settings for tests: no politeness delay, quick retries, the test site allowed."""
    values: dict[str, Any] = {
        "allow_hosts": ["site.test"],
        "per_host_delay_s": 0.0,
        "backoff_s": 0.01,
        "timeout_s": 2.0,
        "retries": 1,
    }
    return CrawlSettings(**(values | overrides))
