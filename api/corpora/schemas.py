"""Corpus schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.ids import CORPUS_NAME_PATTERN

# A new corpus's name (core/ids.py has the rule); a name that refers to a corpus is any a corpus
# may have, so corpora named before the rule are still found by theirs.
CorpusName = Annotated[
    str,
    Field(
        pattern=CORPUS_NAME_PATTERN,
        description="A letter or digit, then up to 63 letters, digits, '.', '-' or '_'.",
        examples=["handbook"],
    ),
]
CorpusRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CorpusCreate(BaseModel):
    name: CorpusName = Field(description="Unique name, used by queries and ingestion.")


class CorpusUpdate(BaseModel):
    name: CorpusName = Field(description="The corpus's new name.")


class CorpusPublic(BaseModel):
    id: str
    name: str
    version: int = Field(description="Bumped whenever the corpus's chunks change.")
    documents: int
    created_at: datetime


class JobLinks(BaseModel):
    job: str = Field(description="GET it for the job's state, counts and failures.")
    cancel: str = Field(description="POST to it to stop the job.")


class JobAccepted(BaseModel):
    """A job started in the background; follow ``links.job`` until its state is final."""

    id: str
    corpus: str
    kind: str = Field(description="ingest, upload, crawl or reindex")
    state: str = Field(
        description=(
            "queued until the job starts (on this server, or on a worker when a queue is configured); "
            "then as GET /v1/jobs/{id} tells, and GET /v1/jobs/{id}/events follows live."
        )
    )
    links: JobLinks

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c1c8e-2b1e-4c39-9a8e-0d6f1f7f9a10",
                    "corpus": "handbook",
                    "kind": "crawl",
                    "state": "queued",
                    "links": {
                        "job": "/v1/jobs/5f0c1c8e-2b1e-4c39-9a8e-0d6f1f7f9a10",
                        "cancel": "/v1/jobs/5f0c1c8e-2b1e-4c39-9a8e-0d6f1f7f9a10/cancel",
                    },
                }
            ]
        }
    )


class UploadedFile(BaseModel):
    name: str = Field(description="The name the file is kept under (its directories stripped).")
    bytes: int
    document_id: str = Field(description="The document it becomes: GET /v1/documents/{id} once the job ran.")


class UploadAccepted(JobAccepted):
    files: list[UploadedFile]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7d2a8e-8d0c-4a52-b7a4-61f0e5e4c2d3",
                    "corpus": "handbook",
                    "kind": "upload",
                    "state": "queued",
                    "links": {
                        "job": "/v1/jobs/0b7d2a8e-8d0c-4a52-b7a4-61f0e5e4c2d3",
                        "cancel": "/v1/jobs/0b7d2a8e-8d0c-4a52-b7a4-61f0e5e4c2d3/cancel",
                    },
                    "files": [
                        {
                            "name": "widgets.md",
                            "bytes": 1832,
                            "document_id": "8e1f0b7c-4f3e-5a7d-9c41-2b6d0e9f3a55",
                        }
                    ],
                }
            ]
        }
    )


Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Host = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class CrawlRequest(BaseModel):
    """What ``lore crawl`` takes: start URLs and limits; lists add to the server's crawl settings."""

    urls: list[Url] = Field(
        min_length=1,
        max_length=100,
        description="Start URLs (http or https): pages, sitemaps or sitemap indexes.",
    )
    max_pages: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="Most pages fetched; default and ceiling: the setting ingestion.crawl.max_pages.",
    )
    max_depth: int | None = Field(
        default=None,
        ge=0,
        strict=True,
        le=50,
        description="Most links followed from a start URL; default: the setting ingestion.crawl.max_depth.",
    )
    allow_hosts: list[Host] = Field(
        default_factory=list,
        max_length=100,
        description="Hosts, addresses or CIDR networks that may be reached although private or loopback.",
    )
    include_patterns: list[Pattern] = Field(
        default_factory=list,
        max_length=100,
        description="Regular expressions; when any is set, only URLs one matches are crawled.",
    )
    exclude_patterns: list[Pattern] = Field(
        default_factory=list, max_length=100, description="Regular expressions; URLs any matches are skipped."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "urls": ["https://docs.example.com/"],
                    "max_pages": 200,
                    "max_depth": 3,
                    "exclude_patterns": ["/changelog/"],
                }
            ]
        },
    )


class ReindexRequest(BaseModel):
    """What ``lore reindex`` takes; anything left out stays as the corpus has it now."""

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description=(
            "Embedding model for the new generation: a sentence-transformers name in the server's "
            "Hugging Face cache or a folder on the server (loaded offline)."
        ),
    )
    chunk_tokens: int | None = Field(
        default=None, ge=8, le=8192, strict=True, description="Most tokens in one chunk."
    )
    chunk_overlap_tokens: int | None = Field(
        default=None, ge=0, le=4096, strict=True, description="Tokens repeated between neighbouring chunks."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"chunk_tokens": 160, "chunk_overlap_tokens": 24}]},
    )
