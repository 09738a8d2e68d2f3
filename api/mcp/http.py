"""The MCP server over Streamable HTTP, at ``/mcp`` on ``lore serve``.

Every request carries the caller's credential as ``Authorization: Bearer <API key or access
token>``, exactly as for ``/v1``: :class:`RequireBearer` checks it before the SDK reads the
request (a missing or bad one is Lore's 401), and leaves the caller in the request's scope for the
tools. The transport runs stateless: every POST is served on its own, so a server with several
workers (or behind a load balancer) needs no sticky sessions, and no session outlives its key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import HTTPConnection
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.cache import get_credential_cache
from api.auth.dependencies import authenticate_bearer
from api.corpora.service import read_scope
from api.dependencies import get_app_settings, get_metrics, get_rate_limiter, get_resources
from api.mcp.server import Caller, Callers, build_server
from api.ops.ratelimit import spend_query
from core.errors import AuthenticationError, LoreError, UnavailableError
from core.resources import Resources
from core.settings import Settings

PATH = "/mcp"
_CALLER = "lore.mcp.caller"


class RequireBearer:
    """ASGI middleware: the request's bearer credential, authenticated, and its caller put in scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_CALLER] = await _authenticate(HTTPConnection(scope))
        await self.app(scope, receive, send)


async def _authenticate(connection: HTTPConnection) -> Caller:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("no credentials: send `Authorization: Bearer <access token or API key>`")
    resources = get_resources(connection)
    cache = get_credential_cache(connection)
    principal = await authenticate_bearer(resources, token.strip(), cache)
    scope = await read_scope(resources, principal, cache)
    settings = get_app_settings(connection)
    limiter = get_rate_limiter(connection)
    metrics = get_metrics(connection)

    async def spend() -> None:
        await spend_query(limiter, settings.rate_limit, metrics, principal=principal)

    return Caller(principal=principal, scope=scope, spend_query=spend)


class HttpCallers(Callers):
    """The caller and resources of the HTTP request a tool call came in."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    async def resources(self, ctx: Context) -> Resources:
        resources: Resources = self._app.state.resources
        return resources

    async def caller(self, ctx: Context) -> Caller:
        request = ctx.request_context.request
        caller = getattr(request, "scope", {}).get(_CALLER)
        if not isinstance(caller, Caller):
            raise LoreError("an MCP call over HTTP came without the caller its request authenticated")
        return caller


def install_mcp(app: FastAPI) -> None:
    """Serve the MCP server at ``/mcp`` on ``app``, while :func:`mcp_lifespan` runs in its lifespan."""
    app.router.routes.append(Route(PATH, RequireBearer(_Serving(app)), include_in_schema=False))


class _Serving:
    """The endpoint of the MCP server the app's current lifespan runs (the SDK's session manager
    runs once only, so each lifespan of an app, as tests give it, builds its own)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint: ASGIApp | None = getattr(self._app.state, "mcp_endpoint", None)
        if endpoint is None:
            raise UnavailableError("the MCP server is not running (starting or stopping)", retry_after_s=1)
        await endpoint(scope, receive, send)


@asynccontextmanager
async def mcp_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The MCP server and its session manager's task group, for as long as the app serves."""
    server = build_server(HttpCallers(app))
    # Builds the session manager; Lore serves its endpoint itself, behind RequireBearer. The SDK's
    # DNS-rebinding guard (Host and Origin must be local) is off, as for /v1: a rebound page has no
    # bearer credential to send, and the guard would refuse every client of a server behind a proxy.
    server.streamable_http_app(
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=settings.server.max_body_bytes,
    )
    manager = server.session_manager
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        # In a task of its own: the manager's task group must be left by the task that entered it,
        # and a lifespan may end in another task than it began (as test fixtures run it).
        async with manager.run():
            started.set()
            await stop.wait()

    running = asyncio.create_task(run(), name="mcp-session-manager")
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([running, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if running.done():
        running.result()  # it failed to start: raise why
    app.state.mcp_endpoint = StreamableHTTPASGIApp(manager)
    try:
        yield
    finally:
        app.state.mcp_endpoint = None
        stop.set()
        await running
