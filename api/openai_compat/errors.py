"""Errors of the OpenAI-compatible API, in OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``.

Status codes come from Lore's one mapping (``api.errors.status_for``), except that invalid input is
400, as OpenAI answers it, not 422. :class:`OpenAIRoute` gives every error raised while answering
one of these routes (dependencies included: credentials, roles, rate limits) this shape.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.errors import error_headers, status_for
from core import errors


class OpenAIError(Exception):
    """A request this API refuses with an error naming the parameter at fault."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model {model!r} does not exist or you do not have access to it; GET /v1/models lists yours.",
        param="model",
        code="model_not_found",
    )


def _type(status: int) -> str:
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    """The JSON of an error, also sent as a stream's last event when a stream fails."""
    return {"error": {"message": message, "type": _type(status), "param": param, "code": code}}


def _lore_code(exc: errors.LoreError) -> str:
    if isinstance(exc, errors.AuthenticationError):
        return "invalid_api_key"
    if isinstance(exc, errors.RateLimitedError):
        return "rate_limit_exceeded"
    return exc.code


def lore_error(exc: errors.LoreError) -> tuple[int, dict[str, object]]:
    """A Lore error's status (400 for invalid input) and OpenAI-shaped body."""
    status = status_for(exc)
    status = 400 if status == 422 else status
    return status, error_body(status, exc.message, code=_lore_code(exc))


def _param(location: Sequence[int | str]) -> str | None:
    """A validation error's field as OpenAI names it: ``messages[0].role``."""
    parts = [p for p in location if p != "body"]
    # Pydantic names the union member it tried (str, list[...]): not part of the field's name.
    parts = [p for p in parts if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float")))]
    if not parts or not isinstance(parts[0], str):
        return None  # the body as a whole (not JSON, or missing)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name or None


def _validation(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    param = _param(first.get("loc", ()))
    message = first.get("msg", "invalid request")
    if param is not None:
        message = f"Invalid value for {param!r}: {message}"
    return JSONResponse(error_body(400, message, param=param, code="invalid_value"), status_code=400)


def response_for(exc: Exception) -> Response | None:
    """The OpenAI-shaped response to ``exc``, or None for an error this API leaves to the app (a crash)."""
    if isinstance(exc, OpenAIError):
        body = error_body(exc.status, exc.message, param=exc.param, code=exc.code)
        return JSONResponse(body, status_code=exc.status)
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    if isinstance(exc, errors.LoreError):
        status, body = lore_error(exc)
        return JSONResponse(body, status_code=status, headers=error_headers(exc))
    if isinstance(exc, StarletteHTTPException):
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}) or None,
        )
    return None


class OpenAIRoute(APIRoute):
    """A route whose errors, from its dependencies or its endpoint, are in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                if (response := response_for(exc)) is None:
                    raise
                return response

        return route
