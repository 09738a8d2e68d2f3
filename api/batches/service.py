"""Batches in the database, and running one (no HTTP here): this module alone writes their rows.

A batch is a row in ``batches`` and one row per input line in ``batch_lines``. Running it answers
its pending lines, ``concurrency`` at a time; each line's result is committed before the next
line is taken, and only while the line is still pending, so a run that is killed and started again
skips what was recorded and never records a line twice. ``attempts`` counts the times a line was
begun (a line cut off mid-answer begins again), ``answers`` the results recorded (at most one).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.service import granted_corpora
from api.batches.parse import Line
from api.schemas import QueryResponse
from core.db.models import BatchLineRow, BatchRow, UserRow, utcnow
from core.errors import ConflictError, LoreError, NotFoundError
from core.resources import Resources
from retrieval import service
from retrieval.service import Ask

log = logging.getLogger("lore.api.batches")


class BatchState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class LineState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


UNFINISHED = (BatchState.PENDING, BatchState.RUNNING)
CANCELLED_LINE = "not answered: the batch was cancelled"
INTERNAL_LINE = "internal error while answering this line"


async def create_batch(
    session: AsyncSession,
    *,
    lines: Sequence[Line],
    user_id: str | None,
    rate_key: str | None,
    batch_id: str | None = None,
) -> BatchRow:
    """Record a batch and its lines (malformed ones already failed with their error)."""
    row = BatchRow(
        id=batch_id or str(uuid.uuid4()),
        user_id=user_id,
        rate_key=rate_key,
        state=BatchState.PENDING,
        total=len(lines),
    )
    session.add(row)
    await session.flush()
    session.add_all(
        BatchLineRow(
            batch_id=row.id,
            n=n,
            custom_id=line.custom_id,
            question=line.question,
            corpus=line.corpus,
            k=line.k,
            state=LineState.FAILED if line.error else LineState.PENDING,
            attempts=0,
            answers=0,
            error=line.error,
        )
        for n, line in enumerate(lines)
    )
    await session.commit()
    return row


async def get_batch(
    session: AsyncSession, batch_id: str, *, user_id: str | None = None, is_admin: bool = True
) -> BatchRow:
    """The batch, if the caller owns it (or is an admin); else not found, as if it did not exist."""
    row = await session.get(BatchRow, batch_id)
    if row is None or (not is_admin and row.user_id != user_id):
        raise NotFoundError(f"no batch {batch_id!r}")
    return row


async def list_batches(session: AsyncSession, *, user_id: str, limit: int = 100) -> list[BatchRow]:
    """The caller's newest batches."""
    query = select(BatchRow).where(BatchRow.user_id == user_id).order_by(BatchRow.created_at.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def line_counts(session: AsyncSession, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Lines per state of each batch: ``{batch_id: {"pending": .., "done": .., "failed": ..}}``."""
    counts: dict[str, dict[str, int]] = {b: {s.value: 0 for s in LineState} for b in batch_ids}
    if batch_ids:
        rows = await session.execute(
            select(BatchLineRow.batch_id, BatchLineRow.state, func.count())
            .where(BatchLineRow.batch_id.in_(batch_ids))
            .group_by(BatchLineRow.batch_id, BatchLineRow.state)
        )
        for batch_id, state, count in rows:
            counts[batch_id][state] = count
    return counts


async def cancel_batch(session: AsyncSession, row: BatchRow) -> BatchRow:
    """Mark an unfinished batch cancelled: its pending lines are not answered. 409 once finished."""
    if row.state not in UNFINISHED:
        raise ConflictError(f"batch {row.id} is {row.state}, not running")
    row.state, row.finished_at = BatchState.CANCELLED, utcnow()
    await session.commit()
    return row


async def output(session: AsyncSession, row: BatchRow) -> list[dict[str, Any]]:
    """One result per input line, in input order (a line not answered yet has state pending)."""
    lines = await session.scalars(
        select(BatchLineRow).where(BatchLineRow.batch_id == row.id).order_by(BatchLineRow.n)
    )
    results = []
    for line in lines:
        result: dict[str, Any] = line.result or {}
        error = line.error
        if line.state == LineState.PENDING and row.state == BatchState.CANCELLED:
            error = CANCELLED_LINE
        results.append(
            {
                "custom_id": line.custom_id,
                "line": line.n + 1,
                "state": line.state,
                "answer": result.get("answer"),
                "citations": result.get("citations", []),
                "refused": result.get("refused"),
                "answer_kind": result.get("answer_kind"),
                "error": None if error is None else {"message": error},
            }
        )
    return results


async def unfinished(session: AsyncSession) -> list[str]:
    """IDs of the batches still to finish (interrupted by a stop), oldest first."""
    query = select(BatchRow.id).where(BatchRow.state.in_(UNFINISHED)).order_by(BatchRow.created_at)
    return list((await session.scalars(query)).all())


async def _scope(session: AsyncSession, user_id: str | None) -> frozenset[str] | None:
    """The owner's read scope: every corpus for the CLI's batches and admins (None), else their grants."""
    if user_id is None:
        return None
    user = await session.get(UserRow, user_id)
    if user is not None and user.role == "admin":
        return None
    return frozenset(await granted_corpora(session, user_id=user_id))


async def run_batch(
    resources: Resources,
    batch_id: str,
    *,
    concurrency: int,
    before_line: Callable[[], Awaitable[None]] | None = None,
    on_line: Callable[[], None] | None = None,
) -> str:
    """Answer the batch's pending lines (``before_line`` waits for each one's turn, e.g. a rate
    limit); gives the batch's state afterwards. Stops between lines once the batch is cancelled."""
    async with resources.sessions() as session:
        row = await get_batch(session, batch_id)
        if row.state not in UNFINISHED:
            return row.state
        row.state = BatchState.RUNNING
        scope = await _scope(session, row.user_id)
        todo = list(
            (
                await session.scalars(
                    select(BatchLineRow.n)
                    .where(BatchLineRow.batch_id == batch_id, BatchLineRow.state == LineState.PENDING)
                    .order_by(BatchLineRow.n)
                )
            ).all()
        )
        await session.commit()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in todo:
        queue.put_nowait(n)

    async def work() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            if before_line is not None:
                await before_line()
            if await _cancelled(resources, batch_id):
                return
            await _answer_line(resources, batch_id, n, scope)
            if on_line is not None:
                on_line()

    await asyncio.gather(*(work() for _ in range(max(1, min(concurrency, len(todo) or 1)))))
    async with resources.sessions() as session:
        row = await get_batch(session, batch_id)
        if row.state == BatchState.RUNNING:
            row.state, row.finished_at = BatchState.COMPLETED, utcnow()
            await session.commit()
        return row.state


async def _cancelled(resources: Resources, batch_id: str) -> bool:
    async with resources.sessions() as session:
        state = await session.scalar(select(BatchRow.state).where(BatchRow.id == batch_id))
    return state != BatchState.RUNNING


async def _answer_line(resources: Resources, batch_id: str, n: int, scope: frozenset[str] | None) -> None:
    where = (BatchLineRow.batch_id == batch_id, BatchLineRow.n == n)
    async with resources.sessions() as session:
        await session.execute(update(BatchLineRow).where(*where).values(attempts=BatchLineRow.attempts + 1))
        line = (await session.scalars(select(BatchLineRow).where(*where))).one()
        await session.commit()
        question, corpus, k = line.question or "", line.corpus, line.k
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        # The cache is on: a question asked before over the same corpora is answered from it.
        answer = await service.answer(resources, Ask(question, corpus=corpus, k=k, allowed_corpora=scope))
        public = QueryResponse.from_domain(answer)
        result = {
            "answer": public.answer,
            "citations": [c.model_dump(mode="json") for c in public.citations],
            "refused": public.refused,
            "answer_kind": answer.answer_kind,
            "cached": answer.cached,
        }
    except LoreError as exc:
        error = exc.message
    except Exception:
        log.exception("batch %s line %d failed", batch_id, n + 1)
        error = INTERNAL_LINE
    async with resources.sessions() as session:
        # Recorded only while pending: a line is never recorded twice, whoever else ran it.
        await session.execute(
            update(BatchLineRow)
            .where(*where, BatchLineRow.state == LineState.PENDING)
            .values(
                state=LineState.DONE if error is None else LineState.FAILED,
                answers=BatchLineRow.answers + 1,
                result=result,
                error=error,
            )
        )
        await session.commit()
