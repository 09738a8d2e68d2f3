"""Request body limit: bodies over the limit get 413 in the JSON error shape.

A declared ``Content-Length`` over the limit is refused before the app runs; a body without one
(chunked) is counted as the app reads it, and the app's reply is replaced by the 413 once the
count passes the limit. Starlette's own ``max_body_size`` is not used: it answers in plain text.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from core.errors import PayloadTooLargeError


def is_upload_path(path: str) -> bool:
    """True for ``/v1/corpora/{corpus}/documents``: multipart uploads, limited by their own setting."""
    parts = path.rstrip("/").split("/")
    return len(parts) == 5 and parts[1:3] == ["v1", "corpora"] and parts[4] == "documents"


def _declared_length(scope: Scope) -> int | None:
    try:
        return int(Headers(scope=scope).get("content-length", ""))
    except ValueError:
        return None


class BodySizeLimitMiddleware:
    """Refuses HTTP request bodies over ``max_bytes``, except on paths ``exempt`` accepts."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, exempt: Callable[[str], bool] = is_upload_path
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def receive_within_limit() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise PayloadTooLargeError(self._message())
            return message

        async def send_unless_exceeded(message: Message) -> None:
            nonlocal response_started
            # The app may turn the error into some other reply (FastAPI makes it a 400): drop it.
            if exceeded and not response_started:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_exceeded)
        except PayloadTooLargeError:
            if not exceeded or response_started:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, receive, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, PayloadTooLargeError.code, self._message())
        await response(scope, receive, send)
