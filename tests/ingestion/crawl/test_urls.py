"""URL normalisation, crawl scope and document names: pure functions."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from ingestion.crawl.urls import Scope, document_name, may_be_document, normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com/a#section", "http://example.com/a"),
        ("http://example.com/?b=2&a=1&a=0", "http://example.com/?a=1&a=0&b=2"),
        ("http://example.com/a?", "http://example.com/a"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/b/..", "http://example.com/a/"),
        ("http://example.com/a//b", "http://example.com/a//b"),
        ("http://example.com/%7euser/%2f%3a", "http://example.com/~user/%2F%3A"),
        ("http://example.com/a b/é", "http://example.com/a%20b/%C3%A9"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://user:secret@example.com/", "http://example.com/"),
        ("http://example.com./", "http://example.com/"),
        ("http://BÜCHER.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_equivalent_urls_normalise_to_one_form(given: str, expected: str) -> None:
    assert normalise_url(given) == expected
    assert normalise_url(expected) == expected


def test_relative_links_resolve_against_their_page() -> None:
    assert normalise_url("../b?x=1#f", "http://example.com/a/c/page.html") == "http://example.com/a/b?x=1"
    assert normalise_url("//other.org/x", "https://example.com/") == "https://other.org/x"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/", "javascript:alert(1)", "mailto:a@b.c", "http://"]
)
def test_only_http_urls_with_a_host_can_be_crawled(url: str) -> None:
    with pytest.raises(InvalidInputError):
        normalise_url(url)


def test_scope_keeps_to_the_start_sites_and_applies_patterns() -> None:
    scope = Scope.build(
        ["https://docs.example.com/guide/"],
        same_site=True,
        include=[r"/guide/"],
        exclude=[r"\?print=1", r"/guide/old/"],
    )
    assert scope.contains("https://docs.example.com/guide/intro")
    assert not scope.contains("http://docs.example.com/guide/intro")  # another scheme
    assert not scope.contains("https://docs.example.com:8443/guide/intro")  # another port
    assert not scope.contains("https://www.example.com/guide/intro")  # another host
    assert not scope.contains("https://docs.example.com/blog/")  # not included
    assert not scope.contains("https://docs.example.com/guide/old/x")  # excluded


def test_leaving_the_start_sites_needs_include_patterns() -> None:
    with pytest.raises(InvalidInputError, match="include patterns"):
        Scope.build(["https://a.example/"], same_site=False, include=[], exclude=[])
    with pytest.raises(InvalidInputError, match="bad URL pattern"):
        Scope.build(["https://a.example/"], same_site=True, include=["("], exclude=[])


@pytest.mark.parametrize(
    ("url", "content_type", "name"),
    [
        ("https://x.org/guide/", "text/html; charset=utf-8", "guide.html"),
        ("https://x.org/", "text/html", "x.org.html"),
        ("https://x.org/files/Annual%20Report.pdf", "application/pdf", "Annual Report.pdf"),
        ("https://x.org/download?id=7", "application/pdf", "download.pdf"),
        ("https://x.org/README.md", "text/plain", "README.md"),
        ("https://x.org/notes.md", "application/octet-stream", "notes.md"),
        ("https://x.org/page.php", "application/xhtml+xml", "page.html"),
        ("https://x.org/logo.png", "image/png", None),
        ("https://x.org/report.pdf", "text/html", "report.html"),
    ],
)
def test_document_name_picks_the_extractor_from_type_then_suffix(
    url: str, content_type: str, name: str | None
) -> None:
    assert document_name(url, content_type) == name


def test_links_to_images_and_archives_are_not_followed() -> None:
    assert may_be_document("https://x.org/guide/")
    assert may_be_document("https://x.org/a.pdf")
    assert may_be_document("https://x.org/index.php?p=1")
    assert not may_be_document("https://x.org/logo.png")
    assert not may_be_document("https://x.org/src.tar.gz")
