"""Web crawling into a corpus: polite, incremental, and guarded against SSRF.

::

    service.crawl     start URLs -> Crawler -> ingestion.pipeline.ingest_sources -> CrawlSummary
    crawler           frontier, robots.txt, sitemaps, redirects, canonical and content dedup
    fetcher           aiohttp adapter: one hop per call, per-host politeness, retries, size caps
    addresses         the SSRF guard: every resolved address checked, connections pinned to them
    urls, robots, sitemaps, pages, state   pure parts (and the per-corpus validator file)
"""

from ingestion.crawl.service import CrawlSummary, crawl, crawl_settings

__all__ = ["CrawlSummary", "crawl", "crawl_settings"]
