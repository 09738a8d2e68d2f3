"""One JSON error shape for every error: ``{"error": {"code": ..., "message": ...}}``.

A 5xx's message never names an internal host: addresses (URLs, ``host:port``) are replaced by
``<internal>`` in what the client reads, and the whole message goes to the server log. A database
that does not answer (restarting, unreachable) is a 503 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

import logging
import math
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.inputs import REFUSED_TEXT_MESSAGE, refused_text
from api.ops.request_id import current_request_id
from core import errors
from core.db.engine import DATABASE_RETRY_AFTER_S, is_database_unavailable

log = logging.getLogger("lore.api")

# Most specific first: the first class an error is an instance of decides the status.
STATUS_BY_ERROR: list[tuple[type[errors.LoreError], int]] = [
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.RateLimitedError, 429),
    (errors.PayloadTooLargeError, 413),
    (errors.UnsupportedFormatError, 415),
    (errors.InvalidInputError, 422),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.ExtractionError, 422),
    (errors.BackendError, 503),
    (errors.LoreError, 500),
]


# Addresses a backend's error may carry: URLs, host:port (names, IPv4, [IPv6]), ('host', port)
# tuples from socket errors, and bare IPv4 addresses.
_ADDRESS = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://\S+"
    r"|(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*"
    r"|\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}\b"
    r"|\(\s*'[^']*'\s*,\s*\d+[^)]*\)"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b"
)


def scrub_addresses(message: str) -> str:
    """``message`` with every internal address in it replaced by ``<internal>``."""
    return _ADDRESS.sub("<internal>", message)


def client_message(exc: errors.LoreError) -> str:
    """What a client reads of ``exc``: its message, addresses scrubbed when it is a 5xx."""
    return scrub_addresses(exc.message) if status_for(exc) >= 500 else exc.message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message}}, headers=headers
    )


def error_headers(exc: errors.LoreError) -> dict[str, str] | None:
    """Headers an error's status calls for: a Bearer challenge on 401, retry hints on 429 and overload."""
    if isinstance(exc, errors.AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, errors.RateLimitedError):
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return {
            "Retry-After": retry,
            "RateLimit-Limit": str(exc.limit),
            "RateLimit-Remaining": str(exc.remaining),
            "RateLimit-Reset": retry,
        }
    if isinstance(exc, errors.OverloadedError | errors.UnavailableError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return None


def status_for(exc: errors.LoreError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls))


def install_error_handlers(app: FastAPI) -> None:
    """Map Lore errors, HTTP errors, validation errors and crashes to the one error shape."""

    @app.exception_handler(errors.LoreError)
    async def _lore(_: Request, exc: errors.LoreError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("request failed: %s", exc.message)
        return error_response(status, exc.code, client_message(exc), error_headers(exc))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # OSError too: asyncpg raises a refused connection as it is, unwrapped by SQLAlchemy.
        if refused_text(exc):
            return error_response(422, errors.InvalidInputError.code, REFUSED_TEXT_MESSAGE)
        if not is_database_unavailable(exc):
            raise exc  # a crash: the server error handler below answers 500
        what = "the database" if isinstance(exc, DBAPIError) else "a service Lore needs"
        log.error("request failed: %s does not answer: %s", what, (str(exc).splitlines() or [repr(exc)])[0])
        unavailable = errors.UnavailableError(
            f"{what} does not answer right now; retry shortly", retry_after_s=DATABASE_RETRY_AFTER_S
        )
        return error_response(503, unavailable.code, unavailable.message, error_headers(unavailable))

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        if not refused_text(exc):
            raise exc  # a crash: the server error handler below answers 500
        return error_response(422, errors.InvalidInputError.code, REFUSED_TEXT_MESSAGE)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
        )
        return error_response(422, "invalid_input", details or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        # Starlette answers crashes outside the middlewares, so the request ID is added here.
        request_id = current_request_id()
        return error_response(
            500,
            "internal_error",
            "internal error; the server log has the details",
            {"X-Request-ID": request_id} if request_id else None,
        )
