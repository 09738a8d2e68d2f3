"""Crawls and re-indexes on the real Redis queue, run by a real arq worker (in this process, so that
it shares the embedded vector store with the searches made meanwhile): one submit_job() for every kind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.components.queue import JobQueue, run_worker
from core.errors import ConflictError
from core.resources import Resources
from ingestion import jobs
from ingestion.jobs import DocumentStatus, JobKind, JobState
from ingestion.pipeline import ingest_paths
from ingestion.submit import JobSpec, run_queued, submit_job
from retrieval.service import find

from .conftest import Site, crawl_settings

pytestmark = [pytest.mark.redis, pytest.mark.models]


@pytest.fixture
async def queued(resources: Resources, redis_url: str) -> AsyncIterator[Resources]:
    """``resources`` with the real Redis queue, on a queue name of its own."""
    resources.settings.queue.redis_url = redis_url
    resources.settings.queue.name = f"lore:test:{uuid.uuid4().hex}"
    resources.queue = await JobQueue.open(resources.settings.queue)
    try:
        yield resources
    finally:
        await resources.queue.close()


async def work_until_empty(resources: Resources) -> None:
    """A real arq worker on the queue, in this process, until the queue is empty."""

    async def handle(job_id: str) -> str:
        return await run_queued(resources, job_id)

    await run_worker(resources.settings.queue, handle, burst=True)


def small_site(site: Site, pages: int) -> str:
    links = [f"/p{i}" for i in range(pages)]
    site.pages["/"] = site.html("Home", *links)
    for i, link in enumerate(links):
        site.pages[link] = site.html(f"Page {i}", body=f"Page {i} tells how widget {i} is assembled.")
    return f"http://127.0.0.1:{site.port}/"


async def test_a_crawl_submitted_with_a_queue_runs_on_a_worker_and_records_every_page(
    queued: Resources, site: Site
) -> None:
    start = small_site(site, 8)
    spec = JobSpec(
        kind=JobKind.CRAWL,
        corpus="web",
        urls=[start],
        crawl=crawl_settings(allow_hosts=["127.0.0.1"], same_site=True),
    )

    submitted = await submit_job(queued, spec)

    assert (submitted.on_queue, submitted.state) == (True, JobState.QUEUED)
    assert (await jobs.get_job(queued.sessions, submitted.job_id))["state"] == JobState.QUEUED
    await work_until_empty(queued)
    job = await jobs.get_job(queued.sessions, submitted.job_id)
    assert (job["kind"], job["state"], job["documents_new"], job["failures"]) == (
        JobKind.CRAWL,
        JobState.SUCCEEDED,
        9,
        [],
    )
    documents = await jobs.job_documents(queued.sessions, submitted.job_id)
    assert [d["seq"] for d in documents] == list(range(1, 10))
    assert {d["status"] for d in documents} == {DocumentStatus.NEW}
    hits = await find(queued, "how is widget 3 assembled?", corpus="web", k=3)
    assert any(h.source.endswith("/p3") for h in hits)


async def test_a_queued_reindex_runs_on_a_worker_while_searches_answer(
    queued: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"d{i}.md").write_text(f"# Widget {i}\n\nWidget {i} is painted colour number {i}.\n")
    await ingest_paths(queued, [docs], corpus="c")
    spec = JobSpec(kind=JobKind.REINDEX, corpus="c", chunk_tokens=64)
    submitted = await submit_job(queued, spec)
    assert submitted.on_queue

    answered = 0

    async def search_throughout(worker: asyncio.Task[None]) -> None:
        nonlocal answered
        while not worker.done():
            hits = await find(queued, "what colour is widget 5 painted?", corpus="c", k=2)
            assert hits, "a search found nothing during the re-index"
            answered += 1
            await asyncio.sleep(0)

    worker = asyncio.create_task(work_until_empty(queued))
    await asyncio.gather(worker, search_throughout(worker))

    job = await jobs.get_job(queued.sessions, submitted.job_id)
    assert (job["kind"], job["state"], job["documents_changed"]) == (JobKind.REINDEX, JobState.SUCCEEDED, 12)
    assert answered > 0
    hits = await find(queued, "what colour is widget 5 painted?", corpus="c", k=1)
    assert hits[0].source.endswith("d5.md")


async def test_a_queued_reindex_is_refused_by_the_worker_while_another_job_of_the_corpus_runs(
    queued: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    await ingest_paths(queued, [docs], corpus="c")
    submitted = await submit_job(queued, JobSpec(kind=JobKind.REINDEX, corpus="c"))
    # Another job of the corpus starts after the re-index was enqueued, before a worker takes it.
    async with queued.sessions() as session:
        corpus_id = (await jobs.get_job(queued.sessions, submitted.job_id))["corpus"]
        from ingestion.corpus_index import get_or_create_corpus

        corpus = await get_or_create_corpus(session, corpus_id)
        other = await jobs.start_job(session, corpus_id=corpus.id, kind=JobKind.INGEST)
        await session.commit()

    await work_until_empty(queued)

    job = await jobs.get_job(queued.sessions, submitted.job_id)
    assert job["state"] == JobState.FAILED
    assert other.id in job["error"] and "running" in job["error"]
    with pytest.raises(ConflictError):
        await submit_job(queued, JobSpec(kind=JobKind.REINDEX, corpus="c"))
