"""Crawl bench: the Python 3.11 manual (about 530 HTML pages) served from 127.0.0.1.

Installs Debian's `python3.11-doc` if the manual is missing (needs root), serves it with
`python -m http.server` (Last-Modified validators, 304 on If-Modified-Since), crawls it through
Lore's real ingestion into a temporary data dir, then crawls again. Prints, for each crawl, pages
fetched, the fetch phase's pages/s, documents and chunks, the 304 share and the total time; the
last line is the same as one JSON object.

    python bench/crawl.py                    # the whole manual (slow on a small CPU: embedding)
    python bench/crawl.py --max-pages 100
    python bench/crawl.py --with-sources     # also the reST sources every page links to
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
MANUAL = Path("/usr/share/doc/python3.11/html")


def ensure_manual() -> None:
    if (MANUAL / "index.html").is_file():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"{MANUAL} is missing: install it with `apt-get install -y python3.11-doc` (as root)")
    print("installing python3.11-doc ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "python3.11-doc"], check=True, capture_output=True)


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


async def crawl_twice(url: str, args: argparse.Namespace) -> list[dict[str, object]]:
    from core.resources import open_resources
    from core.settings import CrawlSettings, Settings
    from ingestion.crawl import crawl

    settings = CrawlSettings(
        allow_hosts=["127.0.0.1"],
        max_pages=args.max_pages,
        max_depth=args.max_depth,
        per_host_delay_s=0.0,
        per_host_concurrency=args.concurrency,
        concurrency=args.concurrency,
        exclude_patterns=[] if args.with_sources else ["/_sources/"],
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="lore-crawl-bench-") as tmp:
        async with open_resources(Settings(data_dir=Path(tmp)), with_llm=False, migrate_sqlite=True) as res:
            for run in ("first", "again"):
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
                        "documents_unchanged": summary.documents_unchanged,
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
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-pages", type=int, default=1000)
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (one host)")
    parser.add_argument("--with-sources", action="store_true", help="also crawl /_sources/ (reST text)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ensure_manual()
    with static_server(MANUAL) as url:
        results = asyncio.run(crawl_twice(url, args))
    for r in results:
        print(
            f"{r['run']:>5}: {r['pages_fetched']} pages in {r['fetch_seconds']} s of fetching "
            f"({r['fetch_pages_per_s']} pages/s, {r['megabytes_downloaded']} MB), "
            f"{r['documents_new']} new, {r['documents_unchanged']} unchanged, "
            f"{r['documents_failed']} failed, "
            f"{r['chunks_embedded']} chunks; 304 share {r['not_modified_share']:.0%}; total {r['seconds']} s "
            f"({r['pages_per_s']} pages/s)"
        )
    print(json.dumps({"manual": str(MANUAL), "max_pages": args.max_pages, "runs": results}))


if __name__ == "__main__":
    main()
