"""Transient failures are retried per page, and `lore jobs retry` runs only what failed again: real
`lore crawl` and `lore jobs retry` processes against a site that answers 503 for a while."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.served import REPO, lore_env

from .conftest import Site

pytestmark = [pytest.mark.models, pytest.mark.slow]


async def lore(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """Run `lore ARGS --json` (without blocking the loop that serves the site): status, JSON, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        "--json",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, json.loads(out), err.decode()


async def test_pages_that_fail_for_a_while_are_retried_and_one_that_keeps_failing_is_retried_alone(
    tmp_path: Path, site: Site
) -> None:
    busy = site.reply("busy", status=503, content_type="text/plain")
    site.pages = {
        "/": site.html("Home", "/flaky", "/steady", "/down"),
        # Two 503s, then the page: within the crawl's retries.
        "/flaky": [busy, busy, site.html("Flaky", body="The flaky page says the pump runs at noon.")],
        "/steady": site.html("Steady", body="The steady page says the valve is red."),
        # Down for longer than the retries last.
        "/down": busy,
    }
    env = lore_env(
        tmp_path / "lore",
        ingestion__crawl__allow_hosts='["127.0.0.1"]',
        ingestion__crawl__per_host_delay_s="0",
        ingestion__crawl__backoff_s="0.01",
        ingestion__crawl__retries="2",
    )
    start = f"http://127.0.0.1:{site.port}/"

    status, crawled, stderr = await lore(env, "crawl", start, "--corpus", "web")

    # The flaky page was indexed; only the page that stayed down failed, with why, and the rest held.
    assert status == 1, stderr
    assert (crawled["documents_new"], crawled["documents_failed"]) == (3, 1), crawled
    assert [f["source"] for f in crawled["failures"]] == [f"{start}down"]
    assert "HTTP 503" in crawled["failures"][0]["error"]
    assert site.hits["/flaky"] == 3
    _, job, _ = await lore(env, "jobs", "show", crawled["job_id"])
    assert job["state"] == "succeeded"

    # When the page is back, a retry fetches it, and nothing else, as a new job linked to the first.
    site.pages["/down"] = site.html("Down", body="The down page says the gate is shut.")
    before = dict(site.hits)
    status, retried, stderr = await lore(env, "jobs", "retry", crawled["job_id"])

    assert status == 0, stderr
    assert (retried["kind"], retried["state"], retried["retry_of"]) == (
        "crawl",
        "succeeded",
        crawled["job_id"],
    )
    assert (retried["documents_total"], retried["documents_new"], retried["failures"]) == (1, 1, [])
    fetched = {
        path: n - before.get(path, 0)
        for path, n in site.hits.items()
        if n != before.get(path, 0) and path != "/robots.txt"
    }
    assert fetched == {"/down": 1}, fetched

    # A job with nothing left to retry says so.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "jobs",
        "retry",
        retried["id"],
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2 and b"no failed documents" in err
