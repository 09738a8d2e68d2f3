"""Batches the API runs: asyncio tasks on the server's loop, resumed when the server starts again.

A stop (shutdown, crash, kill) leaves a batch ``running`` with its finished lines recorded; the
next server's lifespan calls :meth:`BatchRunner.resume_unfinished`, which runs the rest.
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

    def start(self, batch_id: str, *, rate_key: str | None) -> None:
        if batch_id in self._tasks:
            return
        task = asyncio.create_task(self._run(batch_id, rate_key), name=f"batch {batch_id}")
        self._tasks[batch_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(batch_id, None))

    async def _run(self, batch_id: str, rate_key: str | None) -> None:
        settings = self._resources.settings
        limiter = self._limiter()

        async def turn() -> None:
            if limiter is not None and rate_key is not None and settings.rate_limit.enabled:
                await wait_for_token(limiter, settings.rate_limit, limit_class="query", rate_key=rate_key)

        try:
            state = await service.run_batch(
                self._resources, batch_id, concurrency=settings.batch.concurrency, before_line=turn
            )
            log.info("batch %s %s", batch_id, state)
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
            self.start(row.id, rate_key=row.rate_key)
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


def get_batch_runner(connection: HTTPConnection) -> BatchRunner:
    """The app's batch runner (made by the lifespan)."""
    runner: BatchRunner = connection.app.state.batches
    return runner


BatchRunnerDep = Annotated[BatchRunner, Depends(on_loop(get_batch_runner))]
