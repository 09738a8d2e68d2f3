"""Access log and request metrics: one JSON line and one observation per HTTP request."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.ops.metrics import UNMATCHED_ROUTE, Metrics

log = logging.getLogger("lore.access")


def route_template(scope: Scope) -> str:
    """The path template of the route the router matched (``/v1/corpora/{name}``), or "unmatched"."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class AccessMiddleware:
    """Times each HTTP request, records it in :class:`Metrics` and writes the access log line."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception before the response starts becomes a 500 in Starlette's outermost handler.
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            duration_s = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe_request(
                method=scope["method"], route=route, status=status, duration_s=duration_s
            )
            log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration_s * 1000, 2),
                },
            )
