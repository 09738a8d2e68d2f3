"""Crawls through Lore's real ingestion (embedded backends): incremental, gone pages, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fpdf import FPDF
from sqlalchemy import select

from core import ids
from core.db.models import DocumentRow, IngestionJobRow
from core.errors import InvalidInputError
from core.resources import Resources, open_resources
from core.settings import Settings
from ingestion.corpus_index import corpus_index
from ingestion.crawl import crawl
from ingestion.crawl.state import CrawlState

from .conftest import crawl_settings, fake_lookup

if TYPE_CHECKING:
    from .conftest import Site


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    """Embedded resources without the LLM, which crawling never uses."""
    async with open_resources(
        Settings(data_dir=tmp_path / "lore"), with_llm=False, migrate_sqlite=True
    ) as res:
        yield res


def two_page_pdf() -> bytes:
    pdf = FPDF()
    for text in ("Quarterly revenue rose by four percent.", "Costs fell in every region."):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.cell(text=text)
    return bytes(pdf.output())


async def run(resources: Resources, site: Site, *starts: str, **overrides: Any) -> Any:
    return await crawl(
        resources,
        starts or [site.url("/")],
        corpus="web",
        settings=crawl_settings(**overrides),
        lookup=fake_lookup,
    )


async def test_a_recrawl_of_an_unchanged_site_costs_only_304s(resources: Resources, site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/a", "/report.pdf"),
        "/a": site.html("Widgets", body="Alpha widgets are blue and weigh three grams."),
        "/report.pdf": site.reply(two_page_pdf(), content_type="application/pdf"),
    }
    first = await run(resources, site)
    assert (first.documents_new, first.documents_failed, first.documents_deleted) == (3, 0, 0)
    assert first.chunks_embedded > 0
    async with resources.sessions() as session:
        pdf = await session.scalar(select(DocumentRow).where(DocumentRow.source == site.url("/report.pdf")))
    assert pdf is not None and pdf.pages == 2

    again = await run(resources, site)

    assert (again.documents_new, again.documents_changed, again.documents_unchanged) == (0, 0, 3)
    assert again.chunks_embedded == 0 and again.not_modified == 3 and again.bytes_downloaded == 0
    assert site.not_modified == {"/": 1, "/a": 1, "/report.pdf": 1}
    async with resources.sessions() as session:
        job = await session.get(IngestionJobRow, again.job_id)
    assert job is not None and job.documents_unchanged == 3

    # The validator file is a cache: without it, pages download in full and are still unchanged.
    state = CrawlState.path(resources.settings.data_dir, "web")
    assert set(CrawlState.load(state).pages) == {site.url(p) for p in ("/", "/a", "/report.pdf")}
    state.unlink()
    third = await run(resources, site)
    assert (third.documents_unchanged, third.not_modified, third.chunks_embedded) == (3, 0, 0)


async def test_changed_pages_are_replaced_and_vanished_ones_deleted(resources: Resources, site: Site) -> None:
    site.pages = {
        "/": site.html("Home", "/a", "/b"),
        "/a": site.html("A", body="Alpha widgets are blue."),
        "/b": site.html("B", body="Beta gadgets run on solar power."),
    }
    await run(resources, site)
    site.pages["/a"] = site.html("A", body="Alpha widgets are green now.")
    del site.pages["/b"]

    summary = await run(resources, site)

    assert (summary.documents_changed, summary.documents_unchanged, summary.documents_deleted) == (1, 1, 1)
    assert summary.gone == [{"url": site.url("/b"), "reason": "HTTP 404"}]
    # The default grace is 0: the vanished page is deleted with its chunks by this crawl.
    async with resources.sessions() as session:
        sources = set((await session.execute(select(DocumentRow.source))).scalars())
    assert site.url("/b") not in sources and site.url("/a") in sources
    hits = await resources.store.search(
        (await corpus_index(resources, "web")).collection,
        dense=await resources.embedder.embed_query("solar power"),
        sparse=None,
        k=10,
    )
    assert hits and all(h.source != site.url("/b") for h in hits)


async def test_refused_start_urls_fail_before_any_work(resources: Resources, site: Site) -> None:
    with pytest.raises(InvalidInputError, match="only http and https"):
        await run(resources, site, "file:///etc/passwd")
    with pytest.raises(InvalidInputError, match=r"10\.1\.2\.3, a private address"):
        await run(resources, site, f"http://intranet.test:{site.port}/")
    async with resources.sessions() as session:
        assert await session.scalar(select(IngestionJobRow)) is None
    assert not site.hits


async def test_dns_rebinding_after_the_check_is_refused_at_connection(
    resources: Resources, site: Site
) -> None:
    site.pages = {"/": site.html("Home")}
    answers = iter([["93.184.216.34"]])

    async def rebinding(host: str, port: int) -> Sequence[str]:
        # Public when first asked, loopback ever after.
        return next(answers, ["127.0.0.1"])

    summary = await crawl(
        resources,
        [f"http://rebind.test:{site.port}/"],
        corpus="web",
        settings=crawl_settings(allow_hosts=[]),
        lookup=rebinding,
    )
    assert summary.documents_new == 0 and summary.documents_failed == 1
    assert "it resolves to 127.0.0.1, a loopback address" in summary.failures[0]["error"]
    assert not site.hits


async def test_a_vanished_page_waits_out_the_grace(tmp_path: Path, site: Site) -> None:
    from core.settings import IngestionSettings, Settings

    settings = Settings(data_dir=tmp_path / "lore", ingestion=IngestionSettings(gone_grace_s=3600))
    site.pages = {"/": site.html("Home", "/b"), "/b": site.html("B", body="Beta gadgets.")}
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await run(resources, site)
        del site.pages["/b"]
        summary = await run(resources, site)
        async with resources.sessions() as session:
            missing = {
                r.source: r.missing_since for r in (await session.execute(select(DocumentRow))).scalars()
            }
    assert summary.documents_deleted == 0 and summary.gone
    assert missing[site.url("/b")] is not None and missing[site.url("/")] is None


async def test_a_better_url_found_later_for_the_same_content_replaces_the_first(
    resources: Resources, site: Site
) -> None:
    # Pages stream into ingestion as they are fetched: the long URL (depth 1) is ingested before
    # the short one with the same content (depth 2) turns up; the crawl ends with the short one.
    same = site.html("Report", body="The one report, reachable twice.")
    site.pages = {
        "/": site.html("Home", "/reports/2024/annual-report-copy", "/b"),
        "/reports/2024/annual-report-copy": same,
        "/b": site.html("B", "/r"),
        "/r": same,
    }
    summary = await run(resources, site, concurrency=1, per_host_concurrency=1)
    async with resources.sessions() as session:
        sources = set((await session.execute(select(DocumentRow.source))).scalars())
    assert site.paths(sources) == ["/", "/b", "/r"]
    assert summary.gone == [
        {"url": site.url("/reports/2024/annual-report-copy"), "reason": f"duplicate of {site.url('/r')}"}
    ]
    assert summary.documents_deleted == 1
    retired = ids.document_id("web", site.url("/reports/2024/annual-report-copy"))
    assert (
        await resources.store.chunk_ids(
            (await corpus_index(resources, "web")).collection, document_id=retired
        )
        == set()
    )


async def test_fetching_waits_for_a_full_pipeline(resources: Resources, site: Site) -> None:
    links = [f"/p{i}" for i in range(12)]
    site.pages = {"/": site.html("Home", *links)} | {
        link: site.html(f"Page {link}", body=f"Page {link} has its own words.") for link in links
    }
    ingestion = resources.settings.ingestion
    ingestion.queue_documents, ingestion.extract_workers = 1, 1
    fetched_when_first_written: list[int] = []

    class Watch:
        def start(self, total: int) -> None: ...

        def advance(self, source: str, status: str, chunks: int) -> None:
            if not fetched_when_first_written:
                fetched_when_first_written.append(sum(site.hits.values()))

    summary = await crawl(
        resources,
        [site.url("/")],
        corpus="web",
        settings=crawl_settings(concurrency=1, per_host_concurrency=1),
        lookup=fake_lookup,
        ingest_progress=Watch(),
    )
    assert summary.documents_new == 13
    # The first document was written while most pages were still unfetched.
    assert fetched_when_first_written[0] < 13, fetched_when_first_written
