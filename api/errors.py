"""One JSON error shape for every error: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.ops.request_id import current_request_id
from core import errors

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
    if isinstance(exc, errors.OverloadedError):
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
        return error_response(status, exc.code, exc.message, error_headers(exc))

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
