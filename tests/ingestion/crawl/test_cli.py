"""`lore crawl` as an admin runs it: a separate process, a progress bar, the summary counts."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conftest import Site


async def lore(data_dir: Path, *args: str) -> tuple[int, str, str]:
    # Not subprocess.run: the test site is served by this event loop, which must keep running.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")} | {
        "LORE_DATA_DIR": str(data_dir),
        "LORE_INGESTION__CRAWL__PER_HOST_DELAY_S": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        cwd=data_dir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
async def test_crawl_prints_the_summary_counts_as_json(site: Site, tmp_path: Path) -> None:
    site.pages = {"/": site.html("Home", "/a"), "/a": site.html("A", body="Alpha widgets are blue.")}
    start = f"http://127.0.0.1:{site.port}/"

    code, out, err = await lore(
        tmp_path / "lore",
        "crawl",
        start,
        "--corpus",
        "web",
        "--allow-host",
        "127.0.0.1",
        "--max-pages",
        "5",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("documents_new", "documents_deleted", "documents_failed")} == {
        "documents_new": 2,
        "documents_deleted": 0,
        "documents_failed": 0,
    }
    assert {"documents_changed", "documents_unchanged", "chunks_embedded", "seconds"} <= summary.keys()
