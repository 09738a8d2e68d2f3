"""The crawler against a site served on 127.0.0.1: scope, caps, robots, sitemaps, dedup, failures."""

from __future__ import annotations

import gzip
import itertools
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Site


async def test_links_are_followed_to_the_depth_limit(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/a"),
        "/a": site.html("A", "/b"),
        "/b": site.html("B", "/c"),
        "/c": site.html("C"),
    }
    outcome = await site.crawl(max_depth=2)
    assert site.paths(outcome.pages) == ["/", "/a", "/b"]
    assert site.hits["/c"] == 0


async def test_the_page_cap_keeps_the_shallowest_pages(site: Site) -> None:
    site.pages = {"/": site.html("Home", *[f"/p{i}" for i in range(10)])} | {
        f"/p{i}": site.html(f"P{i}", "/deep") for i in range(10)
    }
    site.pages["/deep"] = site.html("Deep")
    outcome = await site.crawl(max_pages=4, concurrency=1)
    assert outcome.pages_fetched == 4 and len(outcome.pages) == 4
    assert sum(n for path, n in site.hits.items() if path != "/robots.txt") == 4
    assert site.hits["/deep"] == 0
    assert outcome.skipped["over max pages"] == 8  # /p3.../p9 and /deep


async def test_robots_txt_rules_for_lorebot_are_obeyed(site: Site) -> None:
    site.pages = {
        "/robots.txt": site.reply(
            "User-agent: *\nDisallow: /\n\nUser-agent: LoreBot\nDisallow: /private/\nAllow: /private/open\n",
            content_type="text/plain",
        ),
        "/": site.html("Home", "/private/secret", "/private/open", "/public"),
        "/private/secret": site.html("Secret"),
        "/private/open": site.html("Open"),
        "/public": site.html("Public"),
    }
    outcome = await site.crawl()
    assert site.paths(outcome.pages) == ["/", "/private/open", "/public"]
    assert site.hits["/private/secret"] == 0
    assert outcome.skipped["disallowed by robots.txt"] == 1


async def test_crawl_delay_spaces_requests_to_the_host(site: Site) -> None:
    site.pages = {
        "/robots.txt": site.reply("User-agent: *\nCrawl-delay: 0.2\n", content_type="text/plain"),
        "/": site.html("Home", "/a", "/b"),
        "/a": site.html("A"),
        "/b": site.html("B"),
    }
    await site.crawl(per_host_concurrency=4)
    starts = sorted(t for path in ("/", "/a", "/b") for t in site.times[path])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2 and min(gaps) >= 0.19


async def test_sitemap_index_and_url_sets_seed_the_crawl(site: Site) -> None:
    ns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'

    def urlset(*paths: str) -> str:
        return (
            f"<urlset {ns}>"
            + "".join(f"<url><loc>{site.url(p) if p[0] == '/' else p}</loc></url>" for p in paths)
            + "</urlset>"
        )

    site.pages = {
        "/sitemap.xml": site.reply(
            f"<sitemapindex {ns}><sitemap><loc>{site.url('/s1.xml')}</loc></sitemap>"
            f"<sitemap><loc>{site.url('/s2.xml.gz')}</loc></sitemap></sitemapindex>",
            content_type="application/xml",
        ),
        "/s1.xml": site.reply(urlset("/a", "/b"), content_type="application/xml"),
        "/s2.xml.gz": site.reply(
            gzip.compress(urlset("/c", "http://elsewhere.test/x").encode()), content_type="application/gzip"
        ),
        "/a": site.html("A", "/linked"),
        "/b": site.html("B"),
        "/c": site.html("C"),
        "/linked": site.html("Linked"),
    }
    outcome = await site.crawl(site.url("/sitemap.xml"), max_depth=0)
    assert site.paths(outcome.pages) == ["/a", "/b", "/c"]
    assert outcome.pages_fetched == 3  # sitemaps are not pages
    assert outcome.skipped["sitemap entry out of scope"] == 1


async def test_redirects_in_scope_are_followed_and_out_of_scope_ones_are_not(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/old", "/away"),
        "/old": site.reply(status=301, headers={"Location": "/new"}),
        "/new": site.html("New"),
        # other.test is the same server under another name: out of scope all the same.
        "/away": site.reply(status=302, headers={"Location": f"http://other.test:{site.port}/landing"}),
        "/landing": site.html("Landing"),
    }
    outcome = await site.crawl()
    assert site.paths(outcome.pages) == ["/", "/new"]
    assert site.hits["/landing"] == 0
    assert outcome.skipped["redirect out of scope"] == 1


async def test_a_start_url_redirect_brings_its_site_into_scope(site: Site) -> None:
    site.pages = {"/": site.html("Home", "/a"), "/a": site.html("A")}
    start = f"http://other.test:{site.port}/"
    site.pages["/go"] = site.reply(status=301, headers={"Location": start})
    outcome = await site.crawl(site.url("/go"), allow_hosts=["site.test", "other.test"])
    assert sorted(outcome.pages) == [start, f"{start}a"]


async def test_canonical_duplicates_collapse_into_one_page(site: Site) -> None:
    canonical = f'<link rel="canonical" href="{site.url("/article")}">'
    site.pages = {
        "/": site.html("Home", "/article?b=2&a=1", "/article?a=1&b=2#top", "/print", "/article"),
        "/article?a=1&b=2": site.html("Article", body="The same article, with its query.", head=canonical),
        "/article": site.html("Article", body="The article."),
        "/print": site.html("Article", body="The article, printable.", head=canonical),
    }
    outcome = await site.crawl()
    assert site.paths(outcome.pages) == ["/", "/article"]
    assert site.hits["/article?a=1&b=2"] == 1
    assert outcome.skipped["canonical elsewhere"] == 2


async def test_identical_pages_under_two_urls_are_one_document(site: Site) -> None:
    home = site.html("Home", "/index.html", "/copy")
    site.pages = {"/": home, "/index.html": home, "/copy": home}
    outcome = await site.crawl()
    assert site.paths(outcome.pages) == ["/"]
    assert outcome.skipped["duplicate content"] == 2


async def test_linked_documents_get_a_name_that_picks_their_extractor(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/files/report.pdf", "/get?id=1", "/logo.png", "/notes.md"),
        "/files/report.pdf": site.reply(b"%PDF-1.4 ...", content_type="application/pdf"),
        "/get?id=1": site.reply(b"%PDF-1.4 ...2", content_type="application/pdf"),
        "/notes.md": site.reply("# Notes\n\nText.\n", content_type="text/plain"),
        "/logo.png": site.reply(b"\x89PNG", content_type="image/png"),
    }
    outcome = await site.crawl()
    names = {url.removeprefix(site.base): page.record.name for url, page in outcome.pages.items()}
    assert names == {
        "/": "site.test.html",
        "/files/report.pdf": "report.pdf",
        "/get?id=1": "get.pdf",
        "/notes.md": "notes.md",
    }
    assert site.hits["/logo.png"] == 0


async def test_robots_meta_noindex_and_nofollow(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/hidden", "/dead-end"),
        "/hidden": site.html("Hidden", "/behind", head='<meta name="robots" content="noindex">'),
        "/behind": site.html("Behind"),
        "/dead-end": site.html("Dead end", "/unreached", head='<meta name="LoreBot" content="nofollow">'),
        "/unreached": site.html("Unreached"),
    }
    outcome = await site.crawl()
    assert site.paths(outcome.pages) == ["/", "/behind", "/dead-end"]
    assert site.hits["/unreached"] == 0


async def test_a_slow_page_times_out_alone(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/slow", "/quick"),
        "/slow": site.html("Slow"),
        "/quick": site.html("Quick"),
    }
    site.pages["/slow"].delay = 2.0  # type: ignore[union-attr]
    began = time.monotonic()
    outcome = await site.crawl(timeout_s=0.3, retries=0)
    assert time.monotonic() - began < 1.5
    assert site.paths(outcome.pages) == ["/", "/quick"]
    assert "timed out" in outcome.failures[site.url("/slow")]


async def test_429_is_retried_after_the_time_retry_after_asks(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/busy"),
        "/busy": [site.reply("slow down", status=429, headers={"Retry-After": "1"}), site.html("Busy")],
    }
    outcome = await site.crawl()
    assert site.url("/busy") in outcome.pages
    first, second = site.times["/busy"]
    assert second - first >= 0.95


async def test_server_errors_are_retried_and_a_too_long_retry_after_is_not_waited(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/flaky", "/closed"),
        "/flaky": [site.reply("oops", status=503), site.html("Flaky")],
        "/closed": site.reply("later", status=503, headers={"Retry-After": "3600"}),
    }
    outcome = await site.crawl(max_retry_after_s=5)
    assert site.url("/flaky") in outcome.pages and site.hits["/flaky"] == 2
    assert site.hits["/closed"] == 1
    assert "retry after 3600 s" in outcome.failures[site.url("/closed")]


async def test_an_oversized_page_is_cut_off_and_fails(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/big", "/streamed"),
        "/big": site.html("Big", body="x" * 50_000),
        # Chunked: no Content-Length announces the size, the download stops past the limit.
        "/streamed": site.html("Streamed", body="x" * 50_000, chunked=True),
    }
    outcome = await site.crawl(max_page_bytes=10_000)
    assert "over the limit of 10000 bytes" in outcome.failures[site.url("/big")]
    assert outcome.failures[site.url("/streamed")] == "the response is over the limit of 10000 bytes"


async def test_pages_already_indexed_are_fetched_conditionally(site: Site) -> None:
    site.pages = {"/": site.html("Home", "/a"), "/a": site.html("A")}
    first = await site.crawl()
    records = {url: page.record for url, page in first.pages.items()}

    again = await site.crawl(indexed=frozenset(records), records=records)

    assert again.not_modified == 2 and again.bytes_downloaded == 0
    assert site.not_modified == {"/": 1, "/a": 1}
    assert all(page.data is None for page in again.pages.values())


async def test_indexed_pages_that_vanished_moved_or_left_scope_are_gone(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/a", "/b", "/c"),
        "/a": site.html("A"),
        "/b": site.html("B"),
        "/c": site.html("C"),
    }
    first = await site.crawl()
    left = site.url("/old-section/x")
    indexed = frozenset(first.pages) | {site.url("/orphan"), left, site.url("/other-crawls/y")}
    site.pages = {
        "/": site.html("Home", "/a", "/b"),  # /c is no longer linked, and 404s
        "/a": site.html("A"),
        "/b": site.reply(status=301, headers={"Location": "/a"}),
    }
    outcome = await site.crawl(
        exclude_patterns=["/old-section/", "/other-crawls/"],
        indexed=indexed,
        own=indexed - {site.url("/other-crawls/y")},
    )
    gone = {url.removeprefix(site.base): why for url, why in outcome.gone.items()}
    assert gone == {
        "/b": f"moved to {site.url('/a')}",
        "/c": "HTTP 404",
        "/orphan": "HTTP 404",
        "/old-section/x": "out of the crawl's scope",
    }  # /other-crawls/y is out of scope too, but another crawl stored it: not ours to judge
    assert site.hits["/other-crawls/y"] == 0


async def test_an_unreachable_robots_txt_fails_the_site_without_reporting_pages_gone(site: Site) -> None:
    site.pages = {
        "/robots.txt": site.reply("down for maintenance", status=503),
        "/": site.html("Home", "/a"),
        "/a": site.html("A"),
    }
    indexed = frozenset({site.url("/"), site.url("/a")})
    outcome = await site.crawl(indexed=indexed, own=indexed)
    assert not outcome.gone and not outcome.pages
    assert "robots.txt is unreachable (HTTP 503" in outcome.failures[site.url("/a")]
    assert site.hits["/"] == site.hits["/a"] == 0
