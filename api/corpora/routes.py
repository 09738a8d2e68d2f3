"""Corpus routes: admins create and delete, upload files and start crawls; every caller lists the
corpora they may read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import func, select
from starlette.requests import ClientDisconnect

from api.auth.cache import forget_credentials
from api.auth.dependencies import AdminPrincipal, CredentialCacheDep, CurrentPrincipal
from api.corpora import service
from api.corpora.schemas import (
    CorpusCreate,
    CorpusPublic,
    CorpusUpdate,
    CrawlRequest,
    JobAccepted,
    JobLinks,
    ReindexRequest,
    UploadAccepted,
    UploadedFile,
)
from api.corpora.uploads import MAX_FILES, SavedFile, receive_files, remove_saved, upload_dir
from api.dependencies import ResourcesDep
from api.job_runner import JobRunner, JobRunnerDep
from api.ops.ratelimit import AdminRateLimit, IngestRateLimit, QueryRateLimit
from api.schemas import ErrorResponse
from core import ids
from core.db.models import DocumentRow
from core.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError
from core.resources import Resources
from ingestion import jobs
from ingestion.crawl import crawl_settings
from ingestion.documents import get_document
from ingestion.jobs import JobKind
from ingestion.pipeline import ingest_sources
from ingestion.sources import Source
from ingestion.submit import JobSpec, Submitted, submit_job

router = APIRouter(prefix="/v1/corpora", tags=["corpora"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_FILES,
                            "description": "The files (PDF, Markdown, text, HTML, DOCX, ...), each under "
                            "ingestion.max_file_bytes; a name already uploaded replaces that document.",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    dependencies=[AdminRateLimit],
    response_model=CorpusPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse, "description": "The name is taken"}},
)
async def create_corpus(body: CorpusCreate, _: AdminPrincipal, resources: ResourcesDep) -> CorpusPublic:
    async with resources.sessions() as session:
        row = await service.create(session, name=body.name)
        await session.commit()
        return CorpusPublic(
            id=row.id, name=row.name, version=row.version, documents=0, created_at=row.created_at
        )


@router.get("", response_model=list[CorpusPublic], dependencies=[QueryRateLimit])
async def list_corpora(
    principal: CurrentPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> list[CorpusPublic]:
    scope = await service.read_scope(resources, principal, credentials)
    async with resources.sessions() as session:
        rows = await service.list_visible(session, scope=scope)
    return [
        CorpusPublic(id=r.id, name=r.name, version=r.version, documents=n, created_at=r.created_at)
        for r, n in rows
    ]


@router.patch(
    "/{corpus_id}",
    dependencies=[AdminRateLimit],
    response_model=CorpusPublic,
    responses={
        404: {"model": ErrorResponse, "description": "No such corpus"},
        409: {"model": ErrorResponse, "description": "The name is taken"},
    },
    summary="Rename a corpus (nothing is re-indexed; grants, conversations and eval runs follow it)",
)
async def rename_corpus(
    corpus_id: str,
    body: CorpusUpdate,
    _: AdminPrincipal,
    resources: ResourcesDep,
    credentials: CredentialCacheDep,
) -> CorpusPublic:
    async with resources.sessions() as session:
        # A running job writes chunks and rows under the name it was started with.
        running = await jobs.running_job(session, corpus_id=corpus_id)
        if running is not None:
            raise ConflictError(
                f"a {running.kind} job ({running.id}) is running on the corpus: rename it after"
            )
        row = await service.rename(session, corpus_id=corpus_id, name=body.name)
        await session.commit()
        documents = await session.scalar(
            select(func.count()).select_from(DocumentRow).where(DocumentRow.corpus_id == row.id)
        )
    # Read scopes are cached by corpus name.
    forget_credentials(credentials)
    return CorpusPublic(
        id=row.id,
        name=row.name,
        version=row.version,
        documents=int(documents or 0),
        created_at=row.created_at,
    )


@router.delete(
    "/{corpus_id}",
    dependencies=[AdminRateLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorResponse, "description": "No such corpus"}},
)
async def delete_corpus(
    corpus_id: str,
    _: AdminPrincipal,
    resources: ResourcesDep,
    runner: JobRunnerDep,
    credentials: CredentialCacheDep,
) -> None:
    # A job still running would write chunks for a corpus that no longer exists.
    await runner.stop_corpus(corpus_id)
    await service.delete(resources, corpus_id=corpus_id)
    # Its grants went with it: a corpus made later under its name must not inherit them.
    forget_credentials(credentials)


def _link(job_id: str, response: Response) -> dict[str, Any]:
    link = f"/v1/jobs/{job_id}"
    response.headers["Location"] = link
    return {"id": job_id, "links": JobLinks(job=link, cancel=f"{link}/cancel")}


def _accepted(submitted: Submitted, spec: JobSpec, response: Response) -> dict[str, Any]:
    return _link(submitted.job_id, response) | {
        "corpus": spec.corpus,
        "kind": spec.kind,
        "state": submitted.state,
    }


async def _submit(resources: Resources, runner: JobRunner, spec: JobSpec) -> Submitted:
    """On the queue's workers when one is configured, else on this server's job runner."""
    return await submit_job(resources, spec, start=runner.starter())


@router.post(
    "/{corpus_id}/documents",
    dependencies=[IngestRateLimit],
    response_model=UploadAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: _error("No such corpus"),
        413: _error(f"A file is over ingestion.max_file_bytes, or more than {MAX_FILES} files were sent"),
        415: _error("Not multipart/form-data, or a file type Lore cannot ingest"),
        422: _error("A malformed body, a part that is not a file, or an unusable file name"),
    },
    openapi_extra=_UPLOAD_BODY,
    summary="Upload files and ingest them in the background",
)
async def upload_documents(
    corpus_id: str,
    request: Request,
    response: Response,
    _: AdminPrincipal,
    resources: ResourcesDep,
    runner: JobRunnerDep,
) -> UploadAccepted:
    """Stream the files to the corpus's upload folder, then ingest exactly those files as one job.

    Answers 202 at once with the job; follow ``links.job`` (or the Location header).
    """
    corpus = await service.get(resources, corpus_id=corpus_id)
    try:
        files = await receive_files(
            request.headers.get("content-type", ""),
            request.stream(),
            directory=upload_dir(resources.settings.data_dir, corpus.id),
            max_file_bytes=resources.settings.ingestion.max_file_bytes,
        )
    except ClientDisconnect:
        raise InvalidInputError("the client went away before the upload finished") from None
    sources = [Source.from_path(f.path) for f in files]
    if resources.queue is not None:
        # Workers may run on other machines: the files travel with the job, in the database.
        queued = [
            Source(source=src.source, name=src.name, data=await asyncio.to_thread(f.path.read_bytes))
            for f, src in zip(files, sources, strict=True)
        ]
        spec = JobSpec(kind=JobKind.UPLOAD, corpus=corpus.name, sources=queued)
        submitted = await _submit(resources, runner, spec)
        await remove_saved(f.path for f in files)
    else:

        async def run(job_id: str) -> object:
            try:
                return await ingest_sources(
                    resources, sources, corpus=corpus.name, kind=JobKind.UPLOAD, job_id=job_id
                )
            finally:
                await remove_saved(await _not_held(resources, corpus.name, job_id, files, sources))

        spec = JobSpec(kind=JobKind.UPLOAD, corpus=corpus.name, sources=sources)
        job = runner.start(
            run, corpus=corpus.name, corpus_id=corpus.id, kind=JobKind.UPLOAD, documents_total=len(sources)
        )
        submitted = Submitted(job_id=job.id, state=jobs.JobState.QUEUED, on_queue=False)
    accepted = _accepted(submitted, spec, response)
    return UploadAccepted(
        **accepted,
        files=[
            UploadedFile(name=f.name, bytes=f.size, document_id=ids.document_id(corpus.name, src.source))
            for f, src in zip(files, sources, strict=True)
        ],
    )


async def _not_held(
    resources: Resources, corpus: str, job_id: str, files: list[SavedFile], sources: list[Source]
) -> list[Path]:
    """The uploaded files of ``job_id`` whose document failed or was never recorded."""
    failed = {f["source"] for f in (await jobs.get_job(resources.sessions, job_id))["failures"]}
    gone = []
    for saved, src in zip(files, sources, strict=True):
        if src.source in failed:
            gone.append(saved.path)
            continue
        try:
            await get_document(resources.sessions, ids.document_id(corpus, src.source))
        except NotFoundError:
            gone.append(saved.path)
    return gone


@router.post(
    "/{corpus_id}/crawls",
    dependencies=[IngestRateLimit],
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: _error("No such corpus"),
        422: _error("A URL that is not http(s), a refused address, a bad pattern or a limit too high"),
    },
    summary="Crawl web sites into the corpus in the background",
)
async def start_crawl(
    corpus_id: str,
    body: CrawlRequest,
    response: Response,
    _: AdminPrincipal,
    resources: ResourcesDep,
    runner: JobRunnerDep,
) -> JobAccepted:
    """Check the start URLs, then crawl them as one job; answers 202 at once with the job."""
    corpus = await service.get(resources, corpus_id=corpus_id)
    settings = crawl_settings(
        resources.settings.ingestion.crawl,
        max_pages=body.max_pages,
        max_depth=body.max_depth,
        allow_hosts=body.allow_hosts,
        include_patterns=body.include_patterns,
        exclude_patterns=body.exclude_patterns,
    )
    starts = await service.check_crawl(body.urls, settings)
    spec = JobSpec(kind=JobKind.CRAWL, corpus=corpus.name, urls=starts, crawl=settings)
    return JobAccepted(**_accepted(await _submit(resources, runner, spec), spec, response))


@router.post(
    "/{corpus_id}/reindex",
    dependencies=[IngestRateLimit],
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: _error("No such corpus"),
        409: _error("A job of the corpus is running"),
        422: _error("A model that cannot be loaded, or chunk sizes out of range"),
    },
    summary="Re-embed the corpus into a new generation (blue/green) in the background",
)
async def start_reindex(
    corpus_id: str,
    body: ReindexRequest,
    response: Response,
    _: AdminPrincipal,
    resources: ResourcesDep,
    runner: JobRunnerDep,
) -> JobAccepted:
    """Build the corpus's next generation while queries keep using the current one, then switch.

    Answers 202 at once with the job; the model is loaded before answering, so a bad one is a 422.
    """
    corpus = await service.get(resources, corpus_id=corpus_id)
    if await runner.pending(corpus=corpus.name):
        raise ConflictError(f"a job of corpus {corpus.name!r} is about to start: re-index once it ends")
    spec = JobSpec(
        kind=JobKind.REINDEX,
        corpus=corpus.name,
        model=body.model,
        chunk_tokens=body.chunk_tokens,
        chunk_overlap_tokens=body.chunk_overlap_tokens,
    )
    try:
        submitted = await _submit(resources, runner, spec)
    except ConfigurationError as exc:
        # the model cannot be loaded
        raise InvalidInputError(exc.message) from exc
    return JobAccepted(**_accepted(submitted, spec, response))
