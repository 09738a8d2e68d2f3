"""Admin routes over ingestion: jobs (state, counts, failures, cancel) and documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from api.auth.dependencies import AdminPrincipal
from api.corpora.schemas import CorpusRef, JobAccepted, JobLinks
from api.dependencies import ResourcesDep
from api.job_runner import JobRunner, JobRunnerDep
from api.ops.ratelimit import AdminRateLimit
from api.schemas import ErrorResponse
from core.errors import NotFoundError
from core.resources import Resources
from ingestion import jobs
from ingestion.submit import retry_spec, submit_job

router = APIRouter(prefix="/v1", tags=["ingestion"], dependencies=[AdminRateLimit])
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": ErrorResponse, "description": "Not found"}}


class JobFailure(BaseModel):
    source: str
    error: str | None


class JobPublic(BaseModel):
    id: str
    corpus: str
    kind: jobs.JobKind = Field(description="ingest (files and uploads), crawl or reindex")
    state: jobs.JobState = Field(
        description=(
            "queued (accepted, waiting for a worker or for this server to start it), running, "
            "succeeded, failed, cancelled or interrupted (its process died or the server stopped)"
        )
    )
    documents_total: int
    documents_new: int
    documents_changed: int
    documents_unchanged: int
    documents_deleted: int
    documents_failed: int
    chunks_embedded: int
    pages_ocr: int = Field(default=0, description="Pages of its documents that OCR read (scans, images).")
    documents_done: int = Field(description="Documents recorded so far, whatever their outcome.")
    documents_per_s: float | None
    chunks_per_s: float | None
    eta_s: float | None = Field(description="Seconds left while it runs, from its rate so far.")
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    retry_of: str | None = Field(description="The job whose failed documents this one runs again.")


class JobDetail(JobPublic):
    failures: list[JobFailure] = Field(description="Every document that failed, with its reason.")


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
        # A job this server accepted is queued until the pipeline records it.
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
        await jobs.request_cancel(resources.sessions, job_id)
    return await _detail(job_id, resources, runner)


class JobDocument(BaseModel):
    """What a job did with one document."""

    seq: int | None = Field(description="Its place in the job's order; the ID of its progress event.")
    source: str
    status: jobs.DocumentStatus
    stage: jobs.DocumentStage | None = Field(
        description="The stage it reached (read, extract, chunk, embed, write); for a failed one, "
        "the stage that failed"
    )
    chunks: int
    error: str | None
    timings_ms: dict[str, float] = Field(description="Milliseconds each stage took.")
    attempts: int = Field(description="Tries of its embedding and writing (outages are retried).")
    ocr_pages: int = Field(default=0, description="Its pages that OCR read (scanned pages, images).")


@router.post(
    "/jobs/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={
        **_NOT_FOUND,
        409: {"model": ErrorResponse, "description": "The job runs, or has nothing to retry"},
    },
    summary="Run a job's failed documents again, as a new job",
)
async def retry_job(
    job_id: str, response: Response, _: AdminPrincipal, resources: ResourcesDep, runner: JobRunnerDep
) -> JobAccepted:
    """A new job (its ``retry_of`` is this one) of only the documents this job failed: an ingest's
    files read again, a crawl's pages fetched again (no links followed), a failed re-index run
    again. An upload's failed files are not kept (409: upload them again)."""
    spec = await retry_spec(resources, job_id)
    submitted = await submit_job(resources, spec, start=runner.starter())
    link = f"/v1/jobs/{submitted.job_id}"
    response.headers["Location"] = link
    return JobAccepted(
        id=submitted.job_id,
        corpus=spec.corpus,
        kind=spec.kind,
        state=submitted.state,
        links=JobLinks(job=link, cancel=f"{link}/cancel"),
    )


@router.get("/jobs/{job_id}/documents", response_model=list[JobDocument], responses=_NOT_FOUND)
async def job_documents(
    job_id: str,
    _: AdminPrincipal,
    resources: ResourcesDep,
    runner: JobRunnerDep,
    status: jobs.DocumentStatus | None = None,
) -> list[JobDocument]:
    """Every document the job recorded, in the order it recorded them (``status``: only those)."""
    await _detail(job_id, resources, runner)
    documents = await jobs.job_documents(resources.sessions, job_id, status=status)
    return [JobDocument(**d) for d in documents]


async def _watched(
    job_id: str,
    resources: ResourcesDep,
    runner: JobRunnerDep,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="Skip the documents up to this event ID.")] = None,
) -> AsyncIterator[jobs.JobEvent]:
    """The job's event stream, its first event read now: a job that does not exist is a 404 here."""
    pending = runner.get(job_id)
    events = jobs.job_events(
        resources.sessions,
        job_id,
        after=max(last_event_id or 0, after or 0),
        accepted=pending.describe_pending() if pending is not None else None,
        still_accepted=lambda: runner.get(job_id) is not None,
    )
    first = await anext(events)

    async def stream() -> AsyncIterator[jobs.JobEvent]:
        yield first
        async for event in events:
            yield event

    return stream()


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}, **_NOT_FOUND},
    summary="Follow a job live, as Server-Sent Events",
    description=(
        "Events: `snapshot` first (data: the job, as `GET /v1/jobs/{id}`), then `document` for each "
        "document the job records (data: `seq`, `source`, `status`, `stage`, `chunks`, `error`, "
        "`timings_ms`; the event's `id` is its `seq`), `progress` when the job's counts change (data: "
        "the job, with `documents_per_s`, `chunks_per_s` and `eta_s`), and `end` last (data: the job "
        "in its final state), after which the stream closes. A client that reconnects with "
        "`Last-Event-ID` (browsers' EventSource do) or `?after=` gets the documents after that one, "
        "none twice. Idle streams carry a `: ping` comment every 15 s."
    ),
)
async def job_events(
    _: AdminPrincipal, events: Annotated[AsyncIterator[jobs.JobEvent], Depends(_watched)]
) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        yield ServerSentEvent(
            event=event.event, data=event.data, id=str(event.id) if event.id is not None else None
        )
