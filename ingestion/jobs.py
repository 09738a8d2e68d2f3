"""What ingestion did and holds: jobs with their counts and failures, and documents (no HTTP here).

The CLI (`lore jobs`, `lore documents`) and the admin API both read through these functions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import CorpusRow, DocumentRow, IngestionJobRow, JobDocumentRow
from core.errors import NotFoundError
from core.resources import Resources
from ingestion.documents import find_document
from ingestion.pipeline import mark_interrupted_jobs

JOB_COUNTS = (
    "documents_total",
    "documents_new",
    "documents_changed",
    "documents_unchanged",
    "documents_deleted",
    "documents_failed",
    "chunks_embedded",
)


def describe_job(job: IngestionJobRow, corpus: str) -> dict[str, Any]:
    """A job as plain data: state, counts, rate in documents per second, times, error."""
    finished = job.finished_at
    seconds = ((finished or job.heartbeat_at or job.started_at) - job.started_at).total_seconds()
    done = job.documents_new + job.documents_changed + job.documents_unchanged + job.documents_failed
    return {
        "id": job.id,
        "corpus": corpus,
        "kind": job.kind,
        "state": job.state,
        **{name: getattr(job, name) for name in JOB_COUNTS},
        "documents_per_s": round(done / seconds, 2) if seconds > 0 else None,
        "started_at": job.started_at.isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "error": job.error,
    }


async def list_jobs(
    sessions: async_sessionmaker[AsyncSession], *, corpus: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Recent jobs, newest first (dead ones marked interrupted first)."""
    await mark_interrupted_jobs(sessions)
    query = (
        select(IngestionJobRow, CorpusRow.name)
        .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
        .order_by(IngestionJobRow.started_at.desc())
        .limit(limit)
    )
    if corpus is not None:
        query = query.where(CorpusRow.name == corpus)
    async with sessions() as session:
        return [describe_job(job, name) for job, name in (await session.execute(query)).all()]


async def get_job(sessions: async_sessionmaker[AsyncSession], job_id: str) -> dict[str, Any]:
    """One job with every failed document and its reason."""
    await mark_interrupted_jobs(sessions)
    async with sessions() as session:
        row = (
            await session.execute(
                select(IngestionJobRow, CorpusRow.name)
                .join(CorpusRow, CorpusRow.id == IngestionJobRow.corpus_id)
                .where(IngestionJobRow.id == job_id)
            )
        ).first()
        if row is None:
            raise NotFoundError(f"no job {job_id!r}")
        failures = (
            await session.execute(
                select(JobDocumentRow).where(
                    JobDocumentRow.job_id == job_id, JobDocumentRow.status == "failed"
                )
            )
        ).scalars()
        return {
            **describe_job(row[0], row[1]),
            "failures": [{"source": f.source, "error": f.error} for f in failures],
        }


def describe_document(row: DocumentRow, corpus: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "corpus": corpus,
        "source": row.source,
        "title": row.title,
        "chunks": row.chunk_count,
        "pages": row.pages,
        "updated_at": row.updated_at.isoformat(),
        "missing_since": row.missing_since.isoformat() if row.missing_since else None,
    }


async def list_documents(sessions: async_sessionmaker[AsyncSession], *, corpus: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        corpus_row = (
            await session.execute(select(CorpusRow).where(CorpusRow.name == corpus))
        ).scalar_one_or_none()
        if corpus_row is None:
            raise NotFoundError(f"no corpus named {corpus!r}")
        rows = (
            await session.execute(
                select(DocumentRow).where(DocumentRow.corpus_id == corpus_row.id).order_by(DocumentRow.source)
            )
        ).scalars()
        return [describe_document(r, corpus) for r in rows]


async def get_document(sessions: async_sessionmaker[AsyncSession], document_id: str) -> dict[str, Any]:
    async with sessions() as session:
        row, corpus = await find_document(session, document_id)
    return describe_document(row, corpus)


async def delete_document(resources: Resources, document_id: str) -> None:
    """Delete a document: its chunks first, then its row and blocks; its corpus's version moves on."""
    async with resources.sessions() as session:
        row = await session.get(DocumentRow, document_id)
        if row is None:
            raise NotFoundError(f"no document {document_id!r}")
        corpus = await session.get(CorpusRow, row.corpus_id)
        if corpus is not None:
            if corpus.collection is not None:
                await resources.store.delete_document(corpus.collection, row.id)
            corpus.version += 1
        # Its stored blocks go with the row (foreign key cascade).
        await session.delete(row)
        await session.commit()
