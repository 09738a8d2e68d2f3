"""Crawl web sites into a corpus: fetch, hand the documents to the ingestion pipeline, remember.

Documents gone from the site (404/410, redirected away, out of scope, duplicate, noindex,
disallowed) are deleted with their chunks once ``ingestion.gone_grace_s`` has passed since a crawl
first found them gone; a page cap or a transient failure never counts as gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from core.db.models import CorpusRow, DocumentRow
from core.errors import InvalidInputError
from core.resources import Resources
from core.settings import CrawlSettings
from ingestion import jobs
from ingestion.corpus_index import corpus_index
from ingestion.crawl.addresses import AddressGuard, AllowList, Lookup
from ingestion.crawl.crawler import Crawler, CrawlOutcome, CrawlProgress, Page
from ingestion.crawl.fetcher import HttpFetcher
from ingestion.crawl.state import CrawlState, PageRecord, crawl_key
from ingestion.crawl.urls import SCHEMES, Scope, host_of, normalise_url
from ingestion.jobs import DocumentStatus, JobKind, JobState
from ingestion.pipeline import IngestSummary, Progress, ingest_sources
from ingestion.retire import retire_sources
from ingestion.sources import Source


@dataclass(slots=True)
class CrawlSummary(IngestSummary):
    """What a crawl changed: the job's counts, and the crawl's own figures.

    ``gone`` lists the pages found gone (deleted once their grace passed).
    """

    pages_fetched: int = 0
    not_modified: int = 0
    bytes_downloaded: int = 0
    gone: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def crawl_settings(
    base: CrawlSettings,
    *,
    max_pages: int | None = None,
    max_depth: int | None = None,
    allow_hosts: Sequence[str] = (),
    include_patterns: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
    ceiling: bool = True,
) -> CrawlSettings:
    """The settings' crawl options with one crawl's limits, and its hosts and patterns added.

    With ``ceiling`` (a crawl asked for over the API), the settings' ``max_pages`` is a ceiling: no
    caller crawls more than the operator allows. The operator's own `lore crawl` may go further.
    """
    if ceiling and max_pages is not None and max_pages > base.max_pages:
        raise InvalidInputError(
            f"max_pages may be at most {base.max_pages} (the setting ingestion.crawl.max_pages)"
        )
    return CrawlSettings.model_validate(
        base.model_dump()
        | {
            "max_pages": max_pages or base.max_pages,
            "max_depth": base.max_depth if max_depth is None else max_depth,
            "allow_hosts": [*base.allow_hosts, *allow_hosts],
            "include_patterns": [*base.include_patterns, *include_patterns],
            "exclude_patterns": [*base.exclude_patterns, *exclude_patterns],
        }
    )


def crawl_params(urls: Sequence[str], settings: CrawlSettings) -> dict[str, object]:
    """What a crawl job records of what it was asked, so that a worker (or a retry) runs it again."""
    return {"urls": list(urls), "crawl": settings.model_dump(mode="json")}


async def crawl(
    resources: Resources,
    urls: Sequence[str],
    *,
    corpus: str,
    settings: CrawlSettings | None = None,
    progress: CrawlProgress | None = None,
    ingest_progress: Progress | None = None,
    lookup: Lookup | None = None,
    job_id: str | None = None,
    retry_of: str | None = None,
) -> CrawlSummary:
    """Crawl from ``urls`` (pages or sitemaps) into ``corpus`` as one ingestion job.

    ``settings`` default to ``ingestion.crawl``; ``lookup`` replaces DNS (tests); ``job_id`` names the job.
    """
    started = time.perf_counter()
    settings = settings or resources.settings.ingestion.crawl
    starts = list(dict.fromkeys(normalise_url(u) for u in urls))
    if not starts:
        raise InvalidInputError("name at least one URL to crawl")
    scope = Scope.build(
        starts,
        same_site=settings.same_site,
        include=settings.include_patterns,
        exclude=settings.exclude_patterns,
    )
    guard = AddressGuard(AllowList.parse(settings.allow_hosts), lookup)
    for url in starts:
        # A refused start URL is the caller's mistake: say so before any work.
        await guard.resolve(host_of(url), 0)

    state_path = CrawlState.path(resources.settings.data_dir, corpus)
    state = CrawlState.load(state_path)
    # First: opening the index may find the corpus's chunks gone and forget what was indexed.
    signature = (await corpus_index(resources, corpus)).signature
    indexed = await _indexed(resources, corpus)
    # A record is trusted only while the index holds exactly the content it describes.
    records = {
        url: rec for url, rec in state.pages.items() if indexed.get(url) == (rec.content_hash, signature)
    }
    key = crawl_key(starts)
    own = frozenset(url for url, rec in state.pages.items() if rec.crawl == key and url in indexed)
    max_bytes = min(settings.max_page_bytes, resources.settings.ingestion.max_file_bytes)
    pending: asyncio.Queue[Source] = asyncio.Queue(maxsize=resources.settings.ingestion.queue_documents)

    async def emit(page: Page) -> None:
        # Waits while the pipeline is full: fetching runs ahead of embedding by a bounded amount.
        data, name = page.data, page.record.name
        modified = http_date(page.record.last_modified)
        await pending.put(
            Source(source=page.url, name=name, data=data or b"", not_modified=data is None, modified=modified)
        )

    async with HttpFetcher(settings, guard) as fetcher:
        crawler = Crawler(
            settings,
            fetcher,
            scope,
            indexed=frozenset(indexed),
            own=own,
            records=records,
            max_bytes=max_bytes,
            progress=progress,
            emit=emit,
        )
        crawling = asyncio.create_task(crawler.run(starts))
        try:
            ingested = await ingest_sources(
                resources,
                _drain(pending, crawling, crawler.outcome),
                corpus=corpus,
                progress=ingest_progress,
                kind=JobKind.CRAWL,
                job_id=job_id,
                params=crawl_params(starts, settings),
                retry_of=retry_of,
            )
        finally:
            crawling.cancel()
            await asyncio.gather(crawling, return_exceptions=True)
    outcome = crawler.outcome
    # A cancelled crawl stopped part way: what it did not reach is not gone.
    deleted = 0
    if ingested.state == JobState.SUCCEEDED:
        deleted = await retire_sources(
            resources, corpus=corpus, gone=list(outcome.gone), present=list(outcome.pages)
        )
    async with resources.sessions() as session:
        results = await jobs.document_outcomes(session, job_id=ingested.job_id)

    kept: dict[str, PageRecord] = {url: rec for url, rec in state.pages.items() if url in indexed}
    for page in outcome.pages.values():
        if results.get(page.url, (DocumentStatus.FAILED, None))[0] != DocumentStatus.FAILED:
            kept[page.url] = replace(page.record, crawl=key)
    CrawlState(kept).save(state_path)

    failures = [{"source": str(f["source"]), "error": f["error"] or ""} for f in jobs.failures_of(results)]
    return CrawlSummary(
        job_id=ingested.job_id,
        corpus=corpus,
        documents_new=ingested.documents_new,
        documents_changed=ingested.documents_changed,
        documents_unchanged=ingested.documents_unchanged,
        documents_deleted=deleted,
        documents_failed=ingested.documents_failed,
        chunks_embedded=ingested.chunks_embedded,
        seconds=round(time.perf_counter() - started, 3),
        state=ingested.state,
        pages_fetched=outcome.pages_fetched,
        not_modified=outcome.not_modified,
        bytes_downloaded=outcome.bytes_downloaded,
        gone=[{"url": url, "reason": reason} for url, reason in sorted(outcome.gone.items())],
        failures=failures,
        skipped=dict(sorted(outcome.skipped.items())),
    )


async def _drain(
    pending: asyncio.Queue[Source], crawling: asyncio.Task[object], outcome: CrawlOutcome
) -> AsyncIterator[Source]:
    """The crawler's documents as they come, until it has finished (its error is raised here); then
    the URLs it failed, each a failed document of the job with its reason."""
    while True:
        if pending.empty() and crawling.done():
            crawling.result()
            for url, error in sorted(outcome.failures.items()):
                if url not in outcome.pages:
                    yield Source(source=url, name=url.rsplit("/", 1)[-1], error=error)
            return
        getter = asyncio.ensure_future(pending.get())
        await asyncio.wait({getter, crawling}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            await asyncio.gather(getter, return_exceptions=True)
        if getter.done() and not getter.cancelled():
            yield getter.result()


async def _indexed(resources: Resources, corpus: str) -> dict[str, tuple[str, str]]:
    """The corpus's web documents: URL -> (content hash, index signature)."""
    async with resources.sessions() as session:
        rows = await session.execute(
            select(DocumentRow.source, DocumentRow.content_hash, DocumentRow.index_signature)
            .join(CorpusRow, CorpusRow.id == DocumentRow.corpus_id)
            .where(CorpusRow.name == corpus)
        )
        return {
            source: (digest, signature)
            for source, digest, signature in rows
            if source.split("://", 1)[0] in SCHEMES
        }


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header (e.g. Last-Modified) as an aware datetime; None when absent or malformed."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
