"""Admin routes over ingestion: jobs (state, counts, failures, cancel) and documents."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.auth.dependencies import AdminPrincipal
from api.corpora.schemas import CorpusRef
from api.corpora.uploads import uploads_root
from api.dependencies import ResourcesDep
from api.job_runner import JobRunner, JobRunnerDep
from api.ops.ratelimit import AdminRateLimit
from api.schemas import ErrorResponse
from core.errors import NotFoundError
from core.resources import Resources
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
    kind: str = Field(description="ingest, upload, crawl or reindex")
    state: str = Field(
        description=(
            "pending (accepted by this server, not started yet), queued (waiting for a worker), "
            "running, succeeded, failed, cancelled or interrupted (its process died or the server stopped)"
        )
    )
    documents_total: int
    documents_new: int
    documents_changed: int
    documents_unchanged: int
    documents_deleted: int
    documents_failed: int
    chunks_embedded: int
    documents_per_s: float | None
    started_at: datetime
    finished_at: datetime | None
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
    updated_at: datetime
    missing_since: datetime | None = Field(description="When a run first found it gone from its source.")


@router.get("/jobs", response_model=list[JobPublic])
async def list_jobs(
    _: AdminPrincipal, resources: ResourcesDep, runner: JobRunnerDep, corpus: CorpusRef | None = None
) -> list[JobPublic]:
    pending = [JobPublic(**j.describe_pending()) for j in await runner.pending(corpus=corpus)]
    return pending + [JobPublic(**j) for j in await jobs.list_jobs(resources.sessions, corpus=corpus)]


async def _detail(job_id: str, resources: Resources, runner: JobRunner) -> JobDetail:
    try:
        return JobDetail(**await jobs.get_job(resources.sessions, job_id))
    except NotFoundError:
        # A job this server accepted is pending until the pipeline records it.
        if (job := runner.get(job_id)) is None:
            raise
        return JobDetail(**job.describe_pending(), failures=[])


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=_NOT_FOUND)
async def get_job(job_id: str, _: AdminPrincipal, resources: ResourcesDep, runner: JobRunnerDep) -> JobDetail:
    return await _detail(job_id, resources, runner)


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobDetail,
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse, "description": "The job is not running"}},
    summary="Stop a running job after the documents it is writing",
)
async def cancel_job(
    job_id: str, _: AdminPrincipal, resources: ResourcesDep, runner: JobRunnerDep
) -> JobDetail:
    """A job stops after the documents it is writing; one this server runs stops within a few seconds.

    A job this server accepted but has not started yet stops at once.
    """
    if not await runner.cancel(job_id):
        await request_cancel(resources.sessions, job_id)
    return await _detail(job_id, resources, runner)


@router.get("/documents/{document_id}", response_model=DocumentPublic, responses=_NOT_FOUND)
async def get_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> DocumentPublic:
    return DocumentPublic(**await jobs.get_document(resources.sessions, document_id))


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_document(document_id: str, _: AdminPrincipal, resources: ResourcesDep) -> None:
    """Delete the document's chunks and row, and its file when it was uploaded through the API."""
    document = await jobs.get_document(resources.sessions, document_id)
    await jobs.delete_document(resources, document_id)
    uploads = uploads_root(resources.settings.data_dir).resolve()
    path = Path(document["source"])
    if path.is_relative_to(uploads):
        await asyncio.to_thread(path.unlink, missing_ok=True)
