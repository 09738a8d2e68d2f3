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
        ("image.png", b"\x89PNG....", UnsupportedFormatError, "unsupported file type"),
    ],
)
def test_bad_files_fail_with_a_clear_reason(
    name: str, data: bytes, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        extract(name, data)
