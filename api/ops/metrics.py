"""Prometheus metrics, in a registry each app owns (no global registry, nothing at import time)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Answers on a CPU take seconds to tens of seconds; the default buckets stop at 10 s.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """The app's counters and histograms; labels are bounded (route templates, never raw paths)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._requests = Counter(
            "lore_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "lore_http_request_duration_seconds",
            "Time from request to the last byte of the response, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._llm_tokens = Counter(
            "lore_llm_tokens",
            "LLM tokens, by direction: in (prompt) or out (completion).",
            ["direction"],
            registry=self.registry,
        )
        self._cache = Counter(
            "lore_cache_lookups",
            "Answer cache lookups, by result: hit or miss.",
            ["result"],
            registry=self.registry,
        )
        self._cache_hits = Counter(
            "lore_cache_hits",
            "Answers served from the cache, by kind: exact repeat or semantic (a close question).",
            ["kind"],
            registry=self.registry,
        )
        self._cache_errors = Counter(
            "lore_cache_errors",
            "Failed answer-cache calls to Redis, by operation (the request went on without the cache).",
            ["op"],
            registry=self.registry,
        )
        self._rate_limit_errors = Counter(
            "lore_rate_limit_backend_errors",
            "Rate-limit hits Redis failed to answer (rate_limit.on_backend_error decided them).",
            registry=self.registry,
        )
        self._moderation = Counter(
            "lore_moderation_verdicts",
            "Sampled answers rated by output moderation, by verdict: passed, flagged or not measured.",
            ["verdict"],
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "lore_rate_limit_rejections",
            "Requests refused by a rate limit, by route class.",
            ["route_class"],
            registry=self.registry,
        )

    def observe_request(self, *, method: str, route: str, status: int, duration_s: float) -> None:
        """Count one HTTP request and its latency; ``route`` is the matched path template."""
        method = method if method in _METHODS else "OTHER"
        self._requests.labels(method=method, route=route, status=str(status)).inc()
        self._latency.labels(route=route).observe(duration_s)

    def count_llm_tokens(self, *, tokens_in: int, tokens_out: int) -> None:
        """Add the prompt and completion tokens of one LLM call."""
        self._llm_tokens.labels(direction="in").inc(tokens_in)
        self._llm_tokens.labels(direction="out").inc(tokens_out)

    def count_cache(self, *, hit: bool, kind: str | None = None) -> None:
        """Count one answer-cache lookup; a hit's ``kind`` is "exact" or "semantic"."""
        self._cache.labels(result="hit" if hit else "miss").inc()
        if hit:
            self._cache_hits.labels(kind=kind or "exact").inc()

    def count_cache_error(self, op: str) -> None:
        """Count one failed cache call: get, set, delete, semantic_nearest or semantic_add."""
        self._cache_errors.labels(op=op).inc()

    def count_rate_limit_error(self, _op: str = "hit") -> None:
        """Count one rate-limit hit the backend failed to answer."""
        self._rate_limit_errors.inc()

    def count_moderation(self, verdict: str) -> None:
        """Count one moderation verdict."""
        self._moderation.labels(verdict=verdict).inc()

    def count_rate_limited(self, route_class: str) -> None:
        """Count one request refused by the ``route_class`` limit."""
        self._rate_limited.labels(route_class=route_class).inc()

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
