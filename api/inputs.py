"""What every request may carry, checked once for every route before its handler runs.

Text must be storable: PostgreSQL's ``text`` holds no NUL character, and a lone surrogate (which
JSON can spell as ``"\\ud800"``) cannot be encoded as UTF-8 at all. Such a string anywhere in the
path, the query, the headers, a form's fields and file names, or a JSON body is a 422, before any
database sees it (the database would fail with a 500). File contents are not looked at: routes
that stream uploads read their bodies themselves, and a file may hold any bytes.

A body must be in a media type the route takes: JSON for JSON routes, a form for form routes;
anything else is a 415. WebSocket frames are JSON too and pass :func:`unstorable` in the socket's
own loop (``api/routes/ws.py``). Should text get past all this, the database's refusal of it
(:func:`refused_text`) is still a 422 (``api/errors.py``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends, params
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, DBAPIError
from starlette.datastructures import UploadFile
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.status import WS_1008_POLICY_VIOLATION

from core.errors import InvalidInputError, UnsupportedFormatError

# NUL and the surrogate range: what PostgreSQL text cannot hold or UTF-8 cannot encode.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# PostgreSQL's refusals of text: NUL (22021, "invalid byte sequence"), a string asyncpg could not
# encode (22000: a lone surrogate), a character the database's encoding lacks (22P05).
REFUSED_TEXT_SQLSTATES = frozenset({"22021", "22000", "22P05"})
REFUSED_TEXT_MESSAGE = "the request carries text the database cannot store: a NUL character or lone surrogate"


def unstorable(value: Any, where: str) -> str | None:
    """Where in ``value`` (strings, lists, dict keys and values) a string holds NUL or a lone
    surrogate, as a dotted path from ``where``; None when every string is storable."""
    if isinstance(value, str):
        return where if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unstorable(key, where) or unstorable(item, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            if (found := unstorable(item, f"{where}.{n}")) is not None:
                return found
    return None


def refusal(where: str) -> InvalidInputError:
    """The 422 for an unstorable string found at ``where``."""
    return InvalidInputError(f"{where}: text may not contain NUL characters or lone surrogates")


def refused_text(exc: BaseException) -> bool:
    """Whether ``exc`` is the database, or its driver, refusing a value a request carried."""
    if isinstance(exc, DataError):
        return True
    if isinstance(exc, DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in REFUSED_TEXT_SQLSTATES
    # SQLite's driver encodes text itself, and fails on a lone surrogate before any SQL runs.
    return isinstance(exc, UnicodeEncodeError) and exc.reason == "surrogates not allowed"


def _in_connection(connection: HTTPConnection) -> str | None:
    found = unstorable(dict(connection.path_params), "path")
    for name, value in connection.query_params.multi_items():
        found = found or unstorable(name, "query") or unstorable(value, f"query.{name}")
    if found is not None:
        return found
    for header, raw in connection.headers.raw:
        if b"\x00" in raw:
            return f"header.{header.decode('latin-1')}"
    return None


def media_type(request: Request) -> str:
    """The request's media type, lower-case and without parameters ("" when none is declared)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _in_body(request: Request, route: APIRoute) -> str | None:
    if route.body_field is None:
        return None  # the route reads its body itself (uploads), or takes none
    media = media_type(request)
    if isinstance(route.body_field.field_info, params.Form):
        if media not in FORM_TYPES:
            raise UnsupportedFormatError(f"send this as a form ({' or '.join(FORM_TYPES)}), not {media!r}")
        # FastAPI parsed the form before the dependencies ran: this is the same, cached, object.
        form = await request.form()
        for name, value in form.multi_items():
            where = f"form.{name}"
            text = (value.filename or "") if isinstance(value, UploadFile) else value
            if _UNSTORABLE.search(name) or _UNSTORABLE.search(text):
                return where
        return None
    if not await request.body():
        return None  # FastAPI answers a missing body with its own 422
    if not is_json(media):
        raise UnsupportedFormatError(f"send the body as application/json, not {media or 'untyped'!r}")
    return unstorable(await request.json(), "body")


async def check_inputs(connection: HTTPConnection) -> None:
    """Refuse a request carrying unstorable text (422) or a body in the wrong media type (415)."""
    found = _in_connection(connection)
    if found is not None and connection.scope["type"] == "websocket":
        # Before the handshake is accepted a socket can only be refused: the client sees a 403.
        raise WebSocketException(WS_1008_POLICY_VIOLATION, refusal(found).message)
    if found is None and isinstance(connection, Request):
        route = connection.scope.get("route")
        found = await _in_body(connection, route) if isinstance(route, APIRoute) else None
    if found is not None:
        raise refusal(found)


InputGuard = Depends(check_inputs)
