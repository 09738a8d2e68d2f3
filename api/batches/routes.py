"""Batch routes (readers and up): submit a JSONL file of questions, follow it, cancel it, read its
results. A caller sees only their own batches (admins every one); any other is 404."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response, status

from api.auth.dependencies import ReaderPrincipal
from api.auth.principal import Principal
from api.batches import service
from api.batches.parse import parse_batch
from api.batches.runner import BatchRunnerDep
from api.batches.schemas import BatchPublic
from api.dependencies import ResourcesDep
from api.inputs import media_type
from api.ops.ratelimit import AdminRateLimit
from api.schemas import ErrorResponse
from core.db.models import BatchRow
from core.errors import InvalidInputError, UnsupportedFormatError
from core.resources import Resources

router = APIRouter(prefix="/v1/batches", tags=["batches"], dependencies=[AdminRateLimit])
JSONL_TYPES = ("application/jsonl", "application/x-ndjson")
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such batch"}
}


async def _public(resources: Resources, row: BatchRow) -> BatchPublic:
    async with resources.sessions() as session:
        counts = await service.line_counts(session, [row.id])
    return BatchPublic.from_row(row, counts[row.id])


async def _owned(resources: Resources, principal: Principal, batch_id: str) -> BatchRow:
    async with resources.sessions() as session:
        return await service.get_batch(
            session, batch_id, user_id=principal.user_id, is_admin=principal.is_admin
        )


@router.post(
    "",
    response_model=BatchPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        415: {"model": ErrorResponse, "description": "The body is not application/jsonl"},
        422: {"model": ErrorResponse, "description": "No lines, too many, or not UTF-8"},
    },
    summary="Submit a batch of questions (JSONL)",
)
async def submit(
    request: Request,
    principal: ReaderPrincipal,
    resources: ResourcesDep,
    runner: BatchRunnerDep,
    corpus: str | None = None,
) -> BatchPublic:
    """The raw body is the batch, application/jsonl or application/x-ndjson: one JSON object a line
    (docs/api.md#batches); ``corpus`` is the default of lines naming none.
    The batch runs in the background: follow it with GET /v1/batches/{id}."""
    if media_type(request) not in JSONL_TYPES:
        raise UnsupportedFormatError(f"send the batch as {' or '.join(JSONL_TYPES)}")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the batch is not UTF-8 text") from exc
    lines = parse_batch(text, corpus=corpus, max_lines=resources.settings.batch.max_lines)
    async with resources.sessions() as session:
        row = await service.create_batch(
            session, lines=lines, user_id=principal.user_id, rate_key=principal.rate_key
        )
    await runner.start(row.id, rate_key=principal.rate_key)
    return await _public(resources, row)


@router.get("", response_model=list[BatchPublic], summary="Your batches, newest first")
async def list_batches(principal: ReaderPrincipal, resources: ResourcesDep) -> list[BatchPublic]:
    async with resources.sessions() as session:
        rows = await service.list_batches(session, user_id=principal.user_id)
        counts = await service.line_counts(session, [r.id for r in rows])
    return [BatchPublic.from_row(r, counts[r.id]) for r in rows]


@router.get("/{batch_id}", response_model=BatchPublic, responses=_NOT_FOUND, summary="A batch's progress")
async def get_batch(batch_id: str, principal: ReaderPrincipal, resources: ResourcesDep) -> BatchPublic:
    return await _public(resources, await _owned(resources, principal, batch_id))


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchPublic,
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse, "description": "The batch has finished"}},
    summary="Cancel a batch: its lines not answered yet are not",
)
async def cancel(
    batch_id: str, principal: ReaderPrincipal, resources: ResourcesDep, runner: BatchRunnerDep
) -> BatchPublic:
    row = await _owned(resources, principal, batch_id)
    async with resources.sessions() as session:
        row = await service.cancel_batch(session, await service.get_batch(session, row.id))
    await runner.cancel(row.id)
    return await _public(resources, row)


@router.get(
    "/{batch_id}/output",
    responses={
        200: {"content": {"application/jsonl": {}}, "description": "One line per input line"},
        **_NOT_FOUND,
    },
    summary="A batch's results as JSONL, in input order",
)
async def get_output(batch_id: str, principal: ReaderPrincipal, resources: ResourcesDep) -> Response:
    row = await _owned(resources, principal, batch_id)
    async with resources.sessions() as session:
        results = await service.output(session, row)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    return Response(body, media_type="application/jsonl")
