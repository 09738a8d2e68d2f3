"""Where batches run: on the job queue's `lore worker` processes when ``LORE_QUEUE__REDIS_URL`` is
set, else as asyncio tasks on the server's loop; :func:`answer_batch` is what runs, either way.

A stop (shutdown, crash, kill) leaves a batch ``running`` with its finished lines recorded. The
next server's lifespan calls :meth:`BatchRunner.resume_unfinished`, which runs the rest (or puts
the batch on the queue again, which does nothing while the queue still holds it: arq runs a task
whose worker died again once its timeout passes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.batches import service
from api.dependencies import on_loop
from api.ops.ratelimit import wait_for_token
from core.components.ratelimit import RateLimiter
from core.resources import Resources

log = logging.getLogger("lore.api.batches")


class BatchRunner:
    """Runs batches as tasks (each line spending its owner's query bucket) and stops them on close."""

    def __init__(self, resources: Resources, limiter: Callable[[], RateLimiter | None]) -> None:
        self._resources = resources
        self._limiter = limiter
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, batch_id: str, *, rate_key: str | None) -> None:
        """Answer the batch: on the queue when there is one, else in a task of this server."""
        if self._resources.queue is not None:
            await self._resources.queue.enqueue_batch(batch_id)
            return
        if batch_id in self._tasks:
            return
        task = asyncio.create_task(self._run(batch_id, rate_key), name=f"batch {batch_id}")
        self._tasks[batch_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(batch_id, None))

    async def _run(self, batch_id: str, rate_key: str | None) -> None:
        try:
            await answer_batch(self._resources, batch_id, rate_key=rate_key, limiter=self._limiter())
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left running: the next start resumes it.
            log.exception("batch %s stopped; it resumes when the server starts again", batch_id)

    async def resume_unfinished(self) -> int:
        """Start every batch a stop left unfinished; gives how many."""
        async with self._resources.sessions() as session:
            ids = await service.unfinished(session)
            rows = [await service.get_batch(session, i) for i in ids]
        for row in rows:
            log.warning("resuming batch %s", row.id)
            await self.start(row.id, rate_key=row.rate_key)
        return len(rows)

    async def cancel(self, batch_id: str) -> None:
        """Stop this server's task of a batch already marked cancelled (it would stop between lines)."""
        task = self._tasks.get(batch_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=10.0)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Cancel every running batch; each stays unfinished, to resume at the next start."""
        tasks = set(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)


async def answer_batch(
    resources: Resources, batch_id: str, *, rate_key: str | None, limiter: RateLimiter | None
) -> str:
    """Answer a batch's pending lines, each spending one token of ``rate_key``'s query bucket
    (waiting when it is empty); gives the batch's state afterwards. The server's tasks and
    `lore worker` both run this."""
    settings = resources.settings

    async def turn() -> None:
        if limiter is not None and rate_key is not None and settings.rate_limit.enabled:
            await wait_for_token(limiter, settings.rate_limit, limit_class="query", rate_key=rate_key)

    state = await service.run_batch(
        resources, batch_id, concurrency=settings.batch.concurrency, before_line=turn
    )
    log.info("batch %s %s", batch_id, state)
    return state


async def answer_queued_batch(resources: Resources, batch_id: str, limiter: RateLimiter | None) -> str:
    """What `lore worker` runs for a queued batch: :func:`answer_batch` as its owner's key."""
    async with resources.sessions() as session:
        rate_key = (await service.get_batch(session, batch_id)).rate_key
    return await answer_batch(resources, batch_id, rate_key=rate_key, limiter=limiter)


def get_batch_runner(connection: HTTPConnection) -> BatchRunner:
    """The app's batch runner (made by the lifespan)."""
    runner: BatchRunner = connection.app.state.batches
    return runner


BatchRunnerDep = Annotated[BatchRunner, Depends(on_loop(get_batch_runner))]
