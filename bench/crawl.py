"""Crawl bench: a real documentation site served from 127.0.0.1, crawled three times.

Sites (Debian packages, installed if missing when run as root):
- `python`: the Python 3.11 manual (`python3.11-doc`, about 530 linked HTML pages);
- `postgresql`: the PostgreSQL 15 manual (`postgresql-doc-15`, about 1,170 HTML pages).

The site is copied to a temporary folder and served with `python -m http.server` (Last-Modified
validators, 304 on If-Modified-Since), then crawled through Lore's real ingestion into a temporary
data dir (allow-list: 127.0.0.1):
1. `first`: every in-scope page fetched and embedded once;
2. `again`: unchanged, so pages should answer 304 and nothing is embedded;
3. `removed`: one page is deleted from the site first; it answers 404 and its document is deleted.
Prints, for each crawl, pages fetched, the fetch phase's pages/s, documents and chunks, the 304
share and the total time, then the checks; the last line is everything as one JSON object.

    python bench/crawl.py --site postgresql --max-pages 5000   # the acceptance run
    python bench/crawl.py --max-pages 100                       # a quick look
    python bench/crawl.py --with-sources     # python: also the reST sources every page links to
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# site name -> (Debian package, folder it installs the HTML manual in)
SITES = {
    "python": ("python3.11-doc", Path("/usr/share/doc/python3.11/html")),
    "postgresql": ("postgresql-doc-15", Path("/usr/share/doc/postgresql-doc-15/html")),
}
# The page the `removed` crawl deletes from the site: linked from others, so it answers 404.
REMOVED = {"python": "library/colorsys.html", "postgresql": "pgstatstatements.html"}


def ensure_site(site: str) -> Path:
    package, folder = SITES[site]
    if (folder / "index.html").is_file():
        return folder
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"{folder} is missing: install it with `apt-get install -y {package}` (as root)")
    print(f"installing {package} ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", package], check=True, capture_output=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def static_server(root: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Timer:
    """Crawl progress that notes when the fetch phase ends (ingestion starts after it)."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.last_fetch = self.began

    def fetched(self, url: str, outcome: str, *, done: int, total: int) -> None:
        self.last_fetch = time.perf_counter()

    def start(self, total: int) -> None:
        self.last_fetch = time.perf_counter()

    def advance(self, source: str, status: str, chunks: int) -> None:
        return None


async def crawl_three_times(url: str, site_root: Path, args: argparse.Namespace) -> dict[str, object]:
    from core.resources import open_resources
    from core.settings import CrawlSettings, Settings
    from ingestion.corpus_index import corpus_index
    from ingestion.crawl import crawl
    from ingestion.documents import list_documents

    settings = CrawlSettings(
        allow_hosts=["127.0.0.1"],
        max_pages=args.max_pages,
        max_depth=args.max_depth,
        per_host_delay_s=0.0,
        per_host_concurrency=args.concurrency,
        concurrency=args.concurrency,
        exclude_patterns=[] if args.with_sources else ["/_sources/"],
    )
    removed_page = REMOVED[args.site]
    removed_url = url + removed_page
    results: list[dict[str, object]] = []
    checks: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="lore-crawl-bench-") as tmp:
        async with open_resources(Settings(data_dir=Path(tmp)), with_llm=False, migrate_sqlite=True) as res:
            for run in ("first", "again", "removed"):
                if run == "removed":
                    (site_root / removed_page).unlink()
                timer = Timer()
                summary = await crawl(
                    res, [url], corpus="manual", settings=settings, progress=timer, ingest_progress=timer
                )
                fetch_s = timer.last_fetch - timer.began
                state = Path(tmp) / "crawl" / "manual.json"
                results.append(
                    {
                        "run": run,
                        "pages_fetched": summary.pages_fetched,
                        "fetch_seconds": round(fetch_s, 2),
                        "fetch_pages_per_s": round(summary.pages_fetched / fetch_s, 1) if fetch_s else None,
                        "not_modified_share": round(summary.not_modified / max(summary.pages_fetched, 1), 3),
                        "megabytes_downloaded": round(summary.bytes_downloaded / 1e6, 1),
                        "documents_new": summary.documents_new,
                        "documents_changed": summary.documents_changed,
                        "documents_unchanged": summary.documents_unchanged,
                        "documents_deleted": summary.documents_deleted,
                        "documents_failed": summary.documents_failed,
                        "chunks_embedded": summary.chunks_embedded,
                        "seconds": summary.seconds,
                        "pages_per_s": round(summary.pages_fetched / summary.seconds, 2),
                        "skipped": summary.skipped,
                        "state_file_kb": round(state.stat().st_size / 1024),
                    }
                )
                for failure in summary.failures[:5]:
                    print(f"  failed {failure['source']}: {failure['error']}", file=sys.stderr)
                sources = [str(d["source"]) for d in await list_documents(res.sessions, corpus="manual")]
                checks[f"documents_after_{run}"] = len(sources)
                checks[f"distinct_sources_after_{run}"] = len(set(sources))
                checks[f"chunks_stored_after_{run}"] = await res.store.count(
                    (await corpus_index(res, "manual")).collection
                )
                checks[f"removed_page_indexed_after_{run}"] = removed_url in sources
    return {"runs": results, "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--site", choices=sorted(SITES), default="python")
    parser.add_argument("--max-pages", type=int, default=1000)
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (one host)")
    parser.add_argument("--with-sources", action="store_true", help="also crawl /_sources/ (reST text)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source = ensure_site(args.site)
    html_pages = sum(1 for _ in source.rglob("*.html"))
    with tempfile.TemporaryDirectory(prefix="lore-site-") as tmp:
        # A copy, so the `removed` crawl can delete a page without touching the installed package.
        site_root = Path(tmp) / "site"
        shutil.copytree(source, site_root)
        with static_server(site_root) as url:
            outcome = asyncio.run(crawl_three_times(url, site_root, args))
    for r in outcome["runs"]:  # type: ignore[attr-defined]
        print(
            f"{r['run']:>7}: {r['pages_fetched']} pages in {r['fetch_seconds']} s of fetching "
            f"({r['fetch_pages_per_s']} pages/s, {r['megabytes_downloaded']} MB), "
            f"{r['documents_new']} new, {r['documents_changed']} changed, "
            f"{r['documents_unchanged']} unchanged, {r['documents_deleted']} deleted, "
            f"{r['documents_failed']} failed, {r['chunks_embedded']} chunks embedded; "
            f"304 share {r['not_modified_share']:.0%}; total {r['seconds']} s"
        )
    checks = outcome["checks"]
    print(f"site: {source} ({html_pages} HTML files); removed page: {REMOVED[args.site]}")
    print("checks: " + ", ".join(f"{k}={v}" for k, v in checks.items()))  # type: ignore[attr-defined]
    print(json.dumps({"site": str(source), "html_files": html_pages, "max_pages": args.max_pages, **outcome}))


if __name__ == "__main__":
    main()
