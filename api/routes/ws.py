"""WebSocket chat: one authenticated conversation per socket, answers streamed token by token.

Protocol (JSON text frames):

- connect to ``/v1/ws?token=<access token or API key>[&conversation_id=<id>]`` (or send the
  token as ``Authorization: Bearer``); the server answers ``{"type": "conversation", "id"}``.
- client: ``{"type": "question", "question": str, "corpus"?: str, "k"?: int}`` or ``{"type": "ping"}``.
- server: ``token`` (``text``: verified sentences), ``sentence_removed`` (``sentence``,
  ``reason``), ``refusal`` (``answer``), ``citations`` (``citations``), ``done`` (``answer``,
  ``model``, ``timings``, ``cached``, ``refused``, ``guardrails``, ``unsupported_sentences``...:
  the SSE ``done``), ``error`` (``code``, ``message``, and ``retry_after_s`` when rate limited),
  ``pong``, and ``ping`` after ``server.websocket_heartbeat_s`` of silence.

Close codes: 1000 normal, 1009 frame too big, 1011 server error, 4401 unauthenticated,
4404 conversation not found (for this caller). A connect URL carrying a NUL character is refused
before the handshake (1008, which the client sees as a 403); such a frame gets an ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from api.auth.cache import get_credential_cache
from api.auth.dependencies import authenticate_bearer
from api.auth.principal import Principal
from api.background import BackgroundWork
from api.conversations import service as conversations
from api.dependencies import BackgroundDep, ResourcesDep, get_metrics
from api.errors import client_message
from api.exchange import Exchange
from api.inputs import refusal, unstorable
from api.ops.ratelimit import check_websocket_message
from api.routes.query import build_ask
from api.schemas import QueryRequest
from core.errors import AuthenticationError, LoreError, NotFoundError, RateLimitedError
from core.resources import Resources
from retrieval import service

log = logging.getLogger("lore.api")
router = APIRouter(tags=["query"])

CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
MAX_FRAME_CHARS = 16_000


def _bearer(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    header = websocket.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    return token or None


@router.websocket("/v1/ws")
async def chat(websocket: WebSocket, resources: ResourcesDep, background: BackgroundDep) -> None:
    await websocket.accept()
    token = _bearer(websocket)
    try:
        if token is None:
            raise AuthenticationError("no credentials: pass ?token= or an Authorization header")
        principal = await authenticate_bearer(resources, token, get_credential_cache(websocket))
    except AuthenticationError as exc:
        await websocket.close(code=CLOSE_UNAUTHENTICATED, reason=exc.message[:120])
        return
    try:
        conversation_id = await _open_conversation(
            resources, principal, websocket.query_params.get("conversation_id")
        )
    except NotFoundError as exc:
        await websocket.close(code=CLOSE_NOT_FOUND, reason=exc.message[:120])
        return
    await websocket.send_json({"type": "conversation", "id": conversation_id})
    try:
        await _serve(websocket, resources, background, principal, conversation_id)
    except WebSocketDisconnect:
        return
    except Exception:
        log.exception("websocket failed")
        with contextlib.suppress(RuntimeError):
            await websocket.close(code=CLOSE_SERVER_ERROR)


async def _open_conversation(resources: Resources, principal: Principal, conversation_id: str | None) -> str:
    async with resources.sessions() as session:
        if conversation_id is not None:
            row = await conversations.get_owned(
                session, user_id=principal.user_id, conversation_id=conversation_id
            )
        else:
            row = await conversations.create(session, user_id=principal.user_id)
            await session.commit()
        return row.id


async def _serve(
    websocket: WebSocket,
    resources: Resources,
    background: BackgroundWork,
    principal: Principal,
    conversation_id: str,
) -> None:
    heartbeat = resources.settings.server.websocket_heartbeat_s
    while True:
        try:
            raw = await asyncio.wait_for(websocket.receive_text(), timeout=heartbeat)
        except TimeoutError:
            await websocket.send_json({"type": "ping"})
            continue
        if len(raw) > MAX_FRAME_CHARS:
            await websocket.close(code=CLOSE_TOO_BIG, reason="frame too big")
            return
        message = _parse(raw)
        if message is None:
            await _error(websocket, "invalid_input", "frames must be JSON objects with a known `type`")
        elif (where := unstorable(message, "frame")) is not None:
            await _error(websocket, "invalid_input", refusal(where).message)
        elif message["type"] == "ping":
            await websocket.send_json({"type": "pong"})
        else:
            await _answer(websocket, resources, background, principal, conversation_id, message)


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") not in ("question", "ping"):
        return None
    return message


async def _error(websocket: WebSocket, code: str, message: str, **extra: object) -> None:
    await websocket.send_json({"type": "error", "code": code, "message": message, **extra})


async def _answer(
    websocket: WebSocket,
    resources: Resources,
    background: BackgroundWork,
    principal: Principal,
    conversation_id: str,
    message: dict[str, Any],
) -> None:
    try:
        await check_websocket_message(websocket, principal)
        body = QueryRequest.model_validate({**message, "conversation_id": conversation_id})
        ask = await build_ask(resources, principal, body, get_credential_cache(websocket))
        events = await service.stream_answer(resources, ask)
    except RateLimitedError as exc:
        await _error(websocket, exc.code, exc.message, retry_after_s=round(exc.retry_after_s, 3))
        return
    except ValidationError as exc:
        await _error(websocket, "invalid_input", "; ".join(e["msg"] for e in exc.errors()))
        return
    except LoreError as exc:
        await _error(websocket, exc.code, client_message(exc))
        return
    exchange = Exchange(body.question, conversation_id, get_metrics(websocket), ask=ask, resources=resources)
    try:
        async for event in events:
            name, payload = exchange.record(event)
            match name:
                case "token":
                    await websocket.send_json({"type": "token", "text": payload})
                case "citations":
                    await websocket.send_json({"type": "citations", "citations": payload})
                case _:
                    assert isinstance(payload, dict)
                    await websocket.send_json({"type": name, **payload})
    except LoreError as exc:
        exchange.failed()
        await _error(websocket, exc.code, client_message(exc))
    finally:
        exchange.save_later(resources, background)
