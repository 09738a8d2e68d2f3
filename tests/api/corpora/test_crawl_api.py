"""POST /v1/corpora/{id}/crawls: checked at once, crawled by a background job, cancellable while pending."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import Lore, Site, html

pytestmark = pytest.mark.models


def crawl_body(site: Site, **fields: Any) -> dict[str, Any]:
    return {"urls": [site.url("/")], "allow_hosts": ["127.0.0.1"], **fields}


async def test_a_crawl_started_through_the_api_ingests_the_site(lore: Lore, site: Site) -> None:
    site.pages = {
        "/": html("Home", "Welcome to the widget site.", "/alpha", "/beta"),
        "/alpha": html("Alpha", "The Alpha widget is blue and weighs three grams."),
        "/beta": html("Beta", "The Beta widget is green."),
    }
    corpus_id = await lore.new_corpus("crawled")

    response = await lore.client.post(
        f"/v1/corpora/{corpus_id}/crawls", json=crawl_body(site, max_pages=10), headers=lore.admin
    )

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["kind"], accepted["state"]) == ("crawl", "queued")
    assert response.headers["location"] == accepted["links"]["job"] == f"/v1/jobs/{accepted['id']}"
    job = await lore.finished(accepted["id"])
    assert (job["state"], job["kind"], job["documents_new"], job["failures"]) == ("succeeded", "crawl", 3, [])
    listed = (await lore.client.get("/v1/jobs", params={"corpus": "crawled"}, headers=lore.admin)).json()
    assert [j["id"] for j in listed] == [accepted["id"]]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"urls": ["ftp://files.example.com/"]}, "http"),
        ({"urls": ["http://127.0.0.1:9/"], "allow_hosts": []}, "loopback"),
        ({"max_pages": 1_000_000}, "max_pages"),
        ({"include_patterns": ["("]}, "pattern"),
    ],
    ids=["scheme", "loopback", "too-many-pages", "bad-pattern"],
)
async def test_a_crawl_the_server_would_refuse_is_422_before_any_job(
    lore: Lore, site: Site, fields: dict[str, Any], message: str
) -> None:
    corpus_id = await lore.new_corpus(f"refused-{message}")

    response = await lore.client.post(
        f"/v1/corpora/{corpus_id}/crawls", json=crawl_body(site, **fields), headers=lore.admin
    )

    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert (
        await lore.client.get("/v1/jobs", params={"corpus": f"refused-{message}"}, headers=lore.admin)
    ).json() == []


async def test_crawls_need_an_admin_and_a_corpus(lore: Lore, site: Site) -> None:
    corpus_id = await lore.new_corpus("crawl-guarded")
    reader = await lore.client.post(
        f"/v1/corpora/{corpus_id}/crawls", json=crawl_body(site), headers=lore.reader
    )
    unknown = await lore.client.post("/v1/corpora/nope/crawls", json=crawl_body(site), headers=lore.admin)
    assert reader.status_code == 403
    assert unknown.status_code == 404


async def test_a_crawl_waiting_on_a_slow_site_stops_when_cancelled(
    lore: Lore, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.pages = {"/": html("Home", "Slow to answer.")}
    site.delay = 10.0
    monkeypatch.setattr(lore.app.state.jobs, "cancel_grace_s", 0.5)
    corpus_id = await lore.new_corpus("cancelled-crawl")
    accepted = (
        await lore.client.post(f"/v1/corpora/{corpus_id}/crawls", json=crawl_body(site), headers=lore.admin)
    ).json()
    await lore.wait_until(accepted["id"], lambda job: job["state"] == "running")
    started = time.monotonic()

    cancelled = await lore.client.post(accepted["links"]["cancel"], headers=lore.admin)

    assert cancelled.status_code == 202, cancelled.text
    # The pipeline records the job cancelled as its task stops, and the runner then says why.
    job = await lore.wait_until(accepted["id"], lambda job: "part way" in (job["error"] or ""))
    assert time.monotonic() - started < site.delay / 2  # not after the site finally answered
    assert job["state"] == "cancelled" and job["documents_new"] == 0, job
    again = await lore.client.post(accepted["links"]["cancel"], headers=lore.admin)
    assert again.status_code == 409


async def test_a_crawl_s_failed_page_is_retried_through_the_api_and_followed_by_its_events(
    lore: Lore, site: Site
) -> None:
    site.pages = {
        "/": html("Home", "Welcome to the gadget site.", "/up", "/down"),
        "/up": html("Up", "The up page is here."),
        "/down": html("Down", "The down page is back."),
    }
    site.statuses["/down"] = 503
    corpus_id = await lore.new_corpus("retried")
    body = crawl_body(site, max_pages=10)
    accepted = (
        await lore.client.post(f"/v1/corpora/{corpus_id}/crawls", json=body, headers=lore.admin)
    ).json()
    job = await lore.finished(accepted["id"])
    assert (job["state"], job["documents_new"], job["documents_failed"]) == ("succeeded", 2, 1)

    # Its documents, and its event stream (the job has ended: every document, then the end)
    documents = (await lore.client.get(f"/v1/jobs/{job['id']}/documents", headers=lore.admin)).json()
    assert [d["seq"] for d in documents] == [1, 2, 3]
    down = next(d for d in documents if d["source"].endswith("/down"))
    assert (down["status"], down["stage"]) == ("failed", "read") and "503" in down["error"]
    stream = await lore.client.get(f"/v1/jobs/{job['id']}/events", headers=lore.admin)
    assert stream.headers["content-type"].startswith("text/event-stream")
    kinds = [line.removeprefix("event: ") for line in stream.text.splitlines() if line.startswith("event: ")]
    assert kinds == ["snapshot", "document", "document", "document", "end"]
    resumed = await lore.client.get(
        f"/v1/jobs/{job['id']}/events", headers={**lore.admin, "Last-Event-ID": "2"}
    )
    assert [line for line in resumed.text.splitlines() if line.startswith("id: ")] == ["id: 3"]

    # Once the page is back, a retry fetches only it, as a new job linked to the first
    del site.statuses["/down"]
    retry = await lore.client.post(f"/v1/jobs/{job['id']}/retry", headers=lore.admin)
    assert retry.status_code == 202, retry.text
    again = await lore.finished(retry.json()["id"])
    assert (again["kind"], again["retry_of"], again["documents_total"], again["documents_new"]) == (
        "crawl",
        job["id"],
        1,
        1,
    )
    nothing = await lore.client.post(f"/v1/jobs/{again['id']}/retry", headers=lore.admin)
    assert nothing.status_code == 409 and "no failed documents" in nothing.json()["error"]["message"]
    missing = await lore.client.get("/v1/jobs/no-such-job/events", headers=lore.admin)
    assert missing.status_code == 404
    assert (await lore.client.get(f"/v1/jobs/{job['id']}/events", headers=lore.reader)).status_code == 403
