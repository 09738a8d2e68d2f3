"""Markdown, HTML and plain text; the other formats are in test_formats.py."""

import pytest

from core.errors import ExtractionError, UnsupportedFormatError
from ingestion.extract import extract


def test_markdown_keeps_title_and_heading_path() -> None:
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun make demo.\n\n```\n# not a heading\n```\n"
    doc = extract("guide.md", text.encode())
    assert doc.title == "Guide"
    install = [b for b in doc.blocks if "make demo" in b.text]
    assert install[0].headings == ("Guide", "Install")
    assert install[0].text.startswith("## Install")
    assert any("# not a heading" in b.text and b.headings == ("Guide", "Install") for b in doc.blocks)


def test_html_drops_navigation_and_scripts_and_keeps_tables() -> None:
    html = b"""<html><head><title>Deploy</title><script>var x = 'tracking';</script></head>
    <body><nav>Home | About</nav><header>Site header</header>
    <main><h1>Deploying</h1><p>Use compose.</p>
    <table><tr><th>Service</th><th>Port</th></tr><tr><td>api</td><td>8000</td></tr></table>
    <ul><li>qdrant</li><li>postgres</li></ul></main>
    <footer>Copyright</footer></body></html>"""
    doc = extract("deploy.html", html)
    text = "\n".join(b.text for b in doc.blocks)
    assert doc.title == "Deploy"
    assert "Use compose." in text and "api | 8000" in text and "- qdrant" in text
    for boilerplate in ("Home | About", "Site header", "Copyright", "tracking"):
        assert boilerplate not in text


@pytest.mark.parametrize(
    ("name", "data", "error", "match"),
    [
        ("empty.md", b"  \n", ExtractionError, "empty"),
        ("notes.txt", b"\n\t \r\n", ExtractionError, "empty"),
        ("image.png", b"\x89PNG....", ExtractionError, "the image could not be decoded"),
        ("archive.zip", b"PK\x03\x04....", UnsupportedFormatError, "unsupported file type"),
    ],
)
def test_bad_files_fail_with_a_clear_reason(
    name: str, data: bytes, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        extract(name, data)


def test_documentation_site_chrome_and_permalinks_are_dropped() -> None:
    html = b"""<html><head><title>os.path</title></head><body>
    <div class="related" role="navigation"><a href="/">index</a> | <a href="/next">next</a></div>
    <div class="sphinxsidebar" role="complementary"><h3>Table of Contents</h3><ul><li>sidebar</li></ul></div>
    <div class="body" role="main">
      <h1>os.path<a class="headerlink" href="#os-path">\xc2\xb6</a></h1>
      <dl><dt>os.path.join(a, *p)</dt><dd><p>Join one or more path segments.</p></dd></dl>
      <ul><li></li><li>real item</li></ul>
    </div>
    <div class="footer" role="contentinfo">Copyright</div></body></html>"""
    doc = extract("os.path.html", html)
    texts = [b.text for b in doc.blocks]
    joined = "\n".join(texts)
    for chrome in ("index | next", "sidebar", "Table of Contents", "Copyright", "\u00b6"):
        assert chrome not in joined
    assert texts.count("Join one or more path segments.") == 1
    assert "- real item" in texts and "- " not in texts
    assert doc.blocks[0].headings == ("os.path",)
