"""Request IDs: taken from a sane incoming ``X-Request-ID`` or generated, returned, and logged."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# Short and free of spaces and control characters, so a client's ID cannot forge log lines.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")

_request_id: ContextVar[str | None] = ContextVar("lore_request_id", default=None)


def current_request_id() -> str | None:
    """The ID of the request being handled, or None outside a request."""
    return _request_id.get()


def request_id_for(incoming: str | None) -> str:
    """The client's ID when it is sane, else a fresh one."""
    if incoming is not None and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each HTTP request and WebSocket an ID, in the context and in the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(Headers(scope=scope).get(HEADER))
        # Not reset afterwards: the server error handler, which Starlette runs outside every
        # middleware, logs in the same task and should still name the request. Each request
        # gets its own task from the server, so the ID goes no further.
        _request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                # Starlette's WebSocket.accept sends None when the route gives no headers.
                message["headers"] = message.get("headers") or []
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
