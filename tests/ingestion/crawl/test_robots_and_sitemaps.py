"""robots.txt rules and directives, sitemap parsing: pure functions."""

from __future__ import annotations

import gzip

import pytest

from core.errors import ExtractionError
from ingestion.crawl.robots import parse_robots, robots_directives, user_agent
from ingestion.crawl.sitemaps import gunzip, parse_sitemap

ROBOTS = """\ufeff
# everyone else stays out
User-agent: *
Disallow: /

User-agent: GoogleBot
User-agent: lorebot
Disallow: /private/
Allow: /private/open$
Disallow: /*.json$
Crawl-delay: 0.5

User-agent: LoreBot/2.0
Disallow: /drafts/
"""


def test_lore_reads_its_own_groups_merged_with_the_longest_rule_winning() -> None:
    rules = parse_robots(ROBOTS)
    assert rules.crawl_delay == 0.5
    assert rules.allows("/")
    assert not rules.allows("/private/secret")
    assert rules.allows("/private/open")
    assert not rules.allows("/private/open/more")  # "$" anchors the end
    assert not rules.allows("/data/x.json")
    assert rules.allows("/data/x.json?v=1")
    assert not rules.allows("/drafts/a")  # a second group for Lore is merged
    assert rules.allows("/robots.txt")


def test_other_crawlers_fall_back_to_the_star_group() -> None:
    assert not parse_robots(ROBOTS, product="OtherBot").allows("/anything")
    assert parse_robots("").allows("/anything")
    assert parse_robots("User-agent: *\nDisallow:\n").allows("/anything")  # empty Disallow allows all


def test_allow_wins_a_tie() -> None:
    rules = parse_robots("User-agent: *\nDisallow: /page\nAllow: /page\n")
    assert rules.allows("/page")


def test_user_agent_names_lore_and_its_version() -> None:
    assert user_agent().startswith("LoreBot/")
    assert user_agent().endswith(" (+https://lore.invalid/bot)")


@pytest.mark.parametrize(
    ("values", "found"),
    [
        (["noindex, nofollow"], {"noindex", "nofollow"}),
        (["none"], {"noindex", "nofollow"}),
        (["lorebot: noindex"], {"noindex"}),
        (["otherbot: noindex"], set()),
        (["max-snippet: 20, nofollow"], {"nofollow"}),
        (["noarchive", "unavailable_after: 25 Jun 2010 15:00:00 PST"], set()),
    ],
)
def test_robots_directives_for_lore(values: list[str], found: set[str]) -> None:
    assert robots_directives(values) == found


SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_urlset_entries_are_read_but_not_extension_locations() -> None:
    xml = (
        f'<?xml version="1.0"?><urlset {SITEMAP_NS} xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        "<url><loc> https://x.org/a </loc><image:image><image:loc>https://x.org/a.png</image:loc></image:image></url>"
        "<url><loc>https://x.org/b?x=1&amp;y=2</loc></url></urlset>"
    ).encode()
    sitemap = parse_sitemap(xml)
    assert sitemap is not None and sitemap.kind == "urlset"
    assert sitemap.locations == ["https://x.org/a", "https://x.org/b?x=1&y=2"]


def test_sitemap_index_gzip_and_non_sitemaps() -> None:
    xml = f"<sitemapindex {SITEMAP_NS}><sitemap><loc>https://x.org/s1.xml.gz</loc></sitemap></sitemapindex>"
    sitemap = parse_sitemap(gunzip(gzip.compress(xml.encode()), 10_000))
    assert sitemap is not None and (sitemap.kind, sitemap.locations) == (
        "sitemapindex",
        ["https://x.org/s1.xml.gz"],
    )
    assert parse_sitemap(b"<html><body>hi</body></html>") is None
    assert parse_sitemap(b"%PDF-1.4") is None
    assert parse_sitemap(b"<urlset><url><loc>broken") is None


def test_entity_declarations_and_gzip_bombs_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><urlset><url><loc>&a;</loc></url></urlset>'
    )
    assert parse_sitemap(laughs) is None
    bomb = gzip.compress(b"\0" * 1_000_000)
    with pytest.raises(ExtractionError, match="more than 1000 bytes"):
        gunzip(bomb, 1000)
    assert gunzip(b"<urlset/>", 5) == b"<urlset/>"  # not gzip: as it is
