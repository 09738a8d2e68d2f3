"""Fire-and-forget work that must not delay a response but must not be lost at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("lore.api")


class BackgroundWork:
    """Keeps spawned tasks referenced (asyncio holds only weak ones) and awaits them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed: %r", task.get_name(), exc)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for pending work (e.g. message saves) before the resources close."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def settle(self, name: str, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for the pending tasks spawned under ``name``."""
        pending = {task for task in self._tasks if task.get_name() == name}
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
