"""A crawl's failed and refused URLs are failed documents of its job, whoever reads the job.

The crawl's own summary always listed them; the job record (`lore jobs show`, GET /v1/jobs/{id})
showed a clean job until they went through the pipeline like any failed document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from api.app import create_app
from core.resources import open_resources
from core.settings import LLMSettings, RateLimitSettings, Settings
from ingestion import jobs
from ingestion.crawl import crawl

from .conftest import crawl_settings, fake_lookup
from .test_cli import lore

if TYPE_CHECKING:
    from .conftest import Site

METADATA = "http://169.254.169.254/latest/meta-data/"
REFUSED = "169.254.169.254 is a cloud metadata address"


def refusing_site(site: Site) -> None:
    """A home page, a page linked from it, and a link that redirects to the cloud metadata address."""
    site.pages = {
        "/": site.html("Home", "/a", "/meta"),
        "/a": site.html("A", body="Alpha widgets are blue."),
        "/meta": site.reply(status=301, headers={"Location": METADATA}),
    }


async def test_a_crawls_refused_url_is_a_failed_document_of_its_job(tmp_path: Path, site: Site) -> None:
    refusing_site(site)
    async with open_resources(
        Settings(data_dir=tmp_path / "lore"), with_llm=False, migrate_sqlite=True
    ) as resources:
        summary = await crawl(
            resources,
            [site.url("/")],
            corpus="web",
            settings=crawl_settings(same_site=False, include_patterns=[".*"]),
            lookup=fake_lookup,
        )
        job = await jobs.get_job(resources.sessions, summary.job_id)

    assert (summary.documents_new, summary.documents_failed) == (2, 1)
    assert (job["state"], job["documents_new"], job["documents_failed"]) == ("succeeded", 2, 1)
    assert job["documents_total"] == 3
    assert [f["source"] for f in job["failures"]] == [site.url("/meta")]
    assert REFUSED in job["failures"][0]["error"]
    assert job["failures"] == summary.failures


# It starts real `lore` processes (each loads the models).
@pytest.mark.slow
async def test_lore_jobs_show_lists_what_lore_crawl_failed(site: Site, tmp_path: Path) -> None:
    # A start URL's redirect is always followed: here to an address no allow-list names.
    site.pages = {"/start": site.reply(status=302, headers={"Location": METADATA})}
    start = f"http://127.0.0.1:{site.port}/start"

    code, out, err = await lore(
        tmp_path / "lore", "crawl", start, "--corpus", "web", "--allow-host", "127.0.0.1", "--json"
    )
    crawled = json.loads(out.strip().splitlines()[-1])
    shown_code, shown, shown_err = await lore(tmp_path / "lore", "jobs", "show", crawled["job_id"], "--json")

    assert code == 1, err  # a document failed: `lore crawl` exits as `lore ingest` does then
    assert crawled["documents_failed"] == 1
    assert shown_code == 0, shown_err
    job = json.loads(shown)
    assert (job["state"], job["documents_failed"], job["documents_total"]) == ("succeeded", 1, 1)
    assert [f["source"] for f in job["failures"]] == [start]
    assert REFUSED in job["failures"][0]["error"]
    assert job["failures"] == crawled["failures"]


@pytest.mark.models
async def test_an_api_crawl_whose_start_urls_are_all_refused_records_each_failure(
    site: Site, tmp_path: Path, user_key: Callable[..., Any]
) -> None:
    # Start URLs the API accepts (an allowed host) that each redirect to a refused address.
    for i in range(3):
        site.pages[f"/start{i}"] = site.reply(status=302, headers={"Location": f"{METADATA}{i}"})
    starts = [f"http://127.0.0.1:{site.port}/start{i}" for i in range(3)]
    settings = Settings(
        data_dir=tmp_path / "lore",
        # Ingestion never calls the LLM: one at a closed port loads no model file.
        llm=LLMSettings(base_url="http://127.0.0.1:9/v1", timeout_s=1),
        rate_limit=RateLimitSettings(enabled=False),
    )
    admin = {"Authorization": f"Bearer {await user_key(settings, 'root', role='admin')}"}
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lore.test") as client,
    ):
        corpus = (await client.post("/v1/corpora", json={"name": "web"}, headers=admin)).json()["id"]
        accepted = await client.post(
            f"/v1/corpora/{corpus}/crawls",
            json={"urls": starts, "allow_hosts": ["127.0.0.1"]},
            headers=admin,
        )
        assert accepted.status_code == 202, accepted.text
        running = app.state.jobs.get(accepted.json()["id"])
        if running is not None and running.task is not None:
            await running.task
        job = (await client.get(f"/v1/jobs/{accepted.json()['id']}", headers=admin)).json()

    assert (job["state"], job["documents_new"], job["documents_failed"]) == ("succeeded", 0, 3)
    assert sorted(f["source"] for f in job["failures"]) == starts
    assert all(REFUSED in f["error"] for f in job["failures"])
