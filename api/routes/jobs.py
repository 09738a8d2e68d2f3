"""Admin routes over ingestion: jobs (state, counts, failures, cancel) and documents."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.auth.dependencies import AdminPrincipal
from api.dependencies import ResourcesDep
from api.ops.ratelimit import AdminRateLimit
from api.schemas import ErrorResponse
from ingestion import jobs
from ingestion.pipeline import request_cancel

router = APIRouter(prefix="/v1", tags=["ingestion"], dependencies=[AdminRateLimit])
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse, "description": "Not found"}}


class JobFailure(BaseModel):
    source: str
    error: str | None


class JobPublic(BaseModel):
    id: str
    corpus: str
    kind: str = Field(description="ingest, crawl or reindex")
    state: str = Field(description="running, succeeded, failed, cancelled or interrupted (its process died)")
    documents_total: int
    documents_new: int
    documents_changed: int
    documents_unchanged: int
    documents_deleted: int
    documents_failed: int
    chunks_embedded: int
    documents_per_s: float | None
    started_at: str
    finished_at: str | None
    error: str | None


class JobDetail(JobPublic):
    failures: list[JobFailure] = Field(description="Every document that failed, with its reason.")


class DocumentPublic(BaseModel):
    id: str
    corpus: str
    source: str
    title: str
    chunks: int
    pages: int | None
    updated_at: str
    missing_since: str | None = Field(description="When a run first found it gone from its source.")


@router.get("/jobs", response_model=list[JobPublic])
async def list_jobs(_: AdminPrincipal, resources: ResourcesDep, corpus: str | None = None) -> list[JobPublic]:
    return [JobPublic(**j) for j in await jobs.list_jobs(resources.sessions, corpus=corpus)]


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=_NOT_FOUND)
async def get_job(job_id: str, _: AdminPrincipal, resources: ResourcesDep) -> JobDetail:
    return JobDetail(**await jobs.get_job(resources.sessions, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobDetail,
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse, "description": "The job is not running"}},
    summary="Ask a running job to stop after its current document",
)
async def cancel_job(job_id: str, _: AdminPrincipal, resources: ResourcesDep) -> JobDetail:
    await request_cancel(resources.sessions, job_id)
    return JobDetail(**await jobs.get_job(resources.sessions, job_id))


@router.get("/documents/{document_id}", response_model=DocumentPublic, responses=_NOT_FOUND)
async def get_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> DocumentPublic:
    return DocumentPublic(**await jobs.get_document(resources.sessions, document_id))


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> None:
    await jobs.delete_document(resources, document_id)
