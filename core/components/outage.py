"""Outage tracking for a backend Lore can run without: one log line as it goes down, one as it returns.

A component that degrades instead of failing (the answer cache without Redis, a rate limiter on
its fallback) reports each failure and each success here. The log says so once per outage, not
once per request, with the backend's own error (which never reaches a client); ``on_error``
counts every failure (a metric); and for ``retry_s`` after a failure :meth:`Outage.should_try`
says to skip the backend, so an unreachable host costs one timeout per interval, not one per call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("lore.outage")

# Called with the operation that failed ("get", "set", "hit"...), e.g. to count it.
ErrorHook = Callable[[str], None]


class Outage:
    """Whether ``what`` is down now, and when to try it again; logs each change of state once."""

    def __init__(
        self,
        what: str,
        *,
        retry_s: float = 0.0,
        on_error: ErrorHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if retry_s < 0:
            raise ValueError(f"retry_s must not be negative, not {retry_s}")
        self.what = what
        self.retry_s = retry_s
        self.on_error = on_error
        self._clock = clock
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """True from a failure until the next success."""
        return self._down_since is not None

    def should_try(self) -> bool:
        """False while the last failure is less than ``retry_s`` old: go without the backend."""
        return self._down_since is None or self._clock() >= self._next_try

    def failed(self, op: str, exc: Exception) -> None:
        """Record that ``op`` failed with ``exc``; the first failure of an outage is logged."""
        if self.on_error is not None:
            self.on_error(op)
        now = self._clock()
        self._next_try = now + self.retry_s
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "%s is unavailable (%s failed: %s); going without it until it answers", self.what, op, exc
            )

    def succeeded(self) -> None:
        """Record a success; the first after an outage is logged."""
        if self._down_since is not None:
            log.warning("%s answers again after %.1f s", self.what, self._clock() - self._down_since)
            self._down_since = None
