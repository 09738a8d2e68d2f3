"""The SSRF guard in a crawl: redirects and links to refused addresses are never fetched."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Site

# Leaving the start site needs include patterns; these tests open every URL to isolate the guard.
ANYWHERE = {"same_site": False, "include_patterns": [".*"]}


async def test_a_redirect_to_loopback_is_refused_unless_allowed(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/hop"),
        "/hop": site.reply(status=302, headers={"Location": f"http://127.0.0.1:{site.port}/secret"}),
        "/secret": site.html("Secret"),
    }
    outcome = await site.crawl(**ANYWHERE)
    assert "127.0.0.1 is a loopback address" in outcome.failures[site.url("/hop")]
    assert site.hits["/secret"] == 0

    allowed = await site.crawl(allow_hosts=["site.test", "127.0.0.0/8"], **ANYWHERE)
    assert f"http://127.0.0.1:{site.port}/secret" in allowed.pages


async def test_redirects_and_links_to_metadata_and_mapped_addresses_are_refused(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/meta", "/mapped", "http://[fd00:ec2::254]/latest"),
        "/meta": site.reply(status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"}),
        "/mapped": site.reply(status=307, headers={"Location": f"http://[::ffff:127.0.0.1]:{site.port}/"}),
    }
    outcome = await site.crawl(**ANYWHERE)
    assert "169.254.169.254 is a cloud metadata address" in outcome.failures[site.url("/meta")]
    assert "loopback" in outcome.failures[site.url("/mapped")]
    assert "cloud metadata" in outcome.failures["http://[fd00:ec2::254]/latest"]
    assert site.hits["/"] == 1  # the mapped loopback address never reached the server


async def test_a_name_resolving_to_a_private_address_is_refused(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", f"http://intranet.test:{site.port}/wiki", f"http://mixed.test:{site.port}/")
    }
    outcome = await site.crawl(**ANYWHERE)
    wiki, mixed = f"http://intranet.test:{site.port}/wiki", f"http://mixed.test:{site.port}/"
    assert "intranet.test: it resolves to 10.1.2.3, a private address" in outcome.failures[wiki]
    # One private address among public ones is enough to refuse the host.
    assert "mixed.test: it resolves to 192.168.1.20" in outcome.failures[mixed]


async def test_a_redirect_to_another_scheme_is_not_followed(site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/file"),
        "/file": site.reply(status=302, headers={"Location": "file:///etc/passwd"}),
    }
    outcome = await site.crawl(**ANYWHERE)
    assert "cannot be crawled: file:///etc/passwd" in outcome.failures[site.url("/file")]
