"""The job queue: arq on Redis. The API and the CLI enqueue; `lore worker` processes run.

Two kinds of task: ingestion jobs (``INGEST_TASK``) and batches of questions (``BATCH_TASK``).

A job is enqueued ``workers_per_job`` times, each copy under its own arq ID, so as many workers
can share it; what keeps two of them off one document is the claim in the database, not the
queue (see :mod:`ingestion.queued`). A copy that finds nothing left to claim returns at once.

A copy that fails for want of a backend (the database restarting, the store gone: a
:class:`~core.errors.BackendError`, or a connection refused) is run again after a pause, up to
:data:`MAX_TRIES` times: it joins its job again and takes over the documents whose claims lapsed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Retry, Worker, func

from core.db.engine import is_database_unavailable
from core.errors import BackendError
from core.settings import QueueSettings

log = logging.getLogger("lore.queue")

INGEST_TASK = "ingest_job"
BATCH_TASK = "batch_job"

# How often a worker writes its health key (which lives a second longer).
HEALTH_INTERVAL_S = 30

# Runs of one queued copy that failed for want of a backend, at most; the pause before the next
# doubles from 2 s to at most 30 s, so the tries span about three minutes of outage.
MAX_TRIES = 10
MAX_RETRY_DEFER_S = 30.0

# What a worker runs for one queued copy of a job: (job ID) -> the job's state as it left it.
JobHandler = Callable[[str], Awaitable[str]]


class JobQueue:
    """Puts ingestion jobs on the Redis queue."""

    def __init__(self, pool: ArqRedis, settings: QueueSettings) -> None:
        self._pool = pool
        self.settings = settings

    @classmethod
    async def open(cls, settings: QueueSettings) -> JobQueue:
        assert settings.redis_url is not None
        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.name)
        return cls(pool, settings)

    async def enqueue(self, job_id: str, *, attempt: str = "", copies: int | None = None) -> None:
        """Enqueue ``job_id`` once per worker that may share it (``copies``, default
        ``workers_per_job``; a crawl or re-index runs on one).

        ``attempt`` names a later enqueueing of the same job (arq ignores a task ID it holds).
        """
        for copy in range(self.settings.workers_per_job if copies is None else copies):
            await self._pool.enqueue_job(
                INGEST_TASK, job_id, _job_id=f"{job_id}:{attempt}{copy}", _queue_name=self.settings.name
            )

    async def enqueue_batch(self, batch_id: str) -> None:
        """Enqueue a batch of questions, once: one worker answers it, ``batch.concurrency`` lines at
        a time. Enqueueing a batch the queue still holds does nothing (arq keeps one task per ID),
        so a server that starts again can enqueue every unfinished batch without doubling one."""
        await self._pool.enqueue_job(
            BATCH_TASK, batch_id, _job_id=f"batch:{batch_id}", _queue_name=self.settings.name
        )

    async def ping(self) -> None:
        """Raise unless the queue's Redis answers."""
        await self._pool.ping()

    async def close(self) -> None:
        await self._pool.aclose()


def _retrying(what: str, handler: JobHandler) -> WorkerCoroutine:
    """``handler`` as an arq task, run again after a pause when it fails for want of a backend."""

    async def task(ctx: dict[Any, Any], *args: Any, **_: Any) -> Any:
        task_id: str = args[0]
        try:
            return await handler(task_id)
        except Exception as exc:
            tries = int(ctx.get("job_try", 1))
            if not (isinstance(exc, BackendError) or is_database_unavailable(exc)) or tries >= MAX_TRIES:
                raise
            defer = min(MAX_RETRY_DEFER_S, 2.0**tries)
            log.warning(
                "%s %s stopped (%s): trying again in %.0f s (try %d of %d)",
                what,
                task_id,
                exc,
                defer,
                tries,
                MAX_TRIES,
            )
            raise Retry(defer=defer) from exc

    return task


async def run_worker(
    settings: QueueSettings,
    handler: JobHandler,
    *,
    batch_handler: JobHandler | None = None,
    burst: bool = False,
) -> None:
    """Serve the queue until SIGINT or SIGTERM (``burst``: until it is empty), calling ``handler``
    for ingestion jobs and ``batch_handler`` for batches of questions."""
    assert settings.redis_url is not None
    functions = [
        func(_retrying("job", handler), name=INGEST_TASK, timeout=settings.job_timeout_s, max_tries=MAX_TRIES)
    ]
    if batch_handler is not None:
        functions.append(
            func(
                _retrying("batch", batch_handler),
                name=BATCH_TASK,
                timeout=settings.job_timeout_s,
                max_tries=MAX_TRIES,
            )
        )

    worker = Worker(
        functions=functions,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=settings.name,
        max_jobs=settings.jobs_per_worker,
        job_timeout=settings.job_timeout_s,
        burst=burst,
        poll_delay=0.2,
        # A result tells nothing the job's row does not; keep it briefly for arq's own checks.
        keep_result=60,
        handle_signals=True,
        health_check_interval=HEALTH_INTERVAL_S,
        health_check_key=health_key(settings),
    )
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        # SIGINT or SIGTERM: arq cancelled its main task (and the jobs running, see run_queued_job).
        log.info("worker stopping")
    finally:
        await worker.close()


def health_key(settings: QueueSettings) -> str:
    """The Redis key a worker on this host refreshes while it serves (a container is a host)."""
    return f"{settings.name}:health-check:{socket.gethostname()}"


async def worker_is_healthy(settings: QueueSettings) -> bool:
    """Whether the worker on this host refreshed its health key within the last interval."""
    assert settings.redis_url is not None
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        return bool(await pool.exists(health_key(settings)))
    finally:
        await pool.aclose()
