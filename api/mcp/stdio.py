"""The MCP server over stdio (``lore mcp``), acting as one user.

The process is started by the MCP client (Claude Desktop, an IDE, an agent) on the machine that
holds Lore's data dir, and acts as the user named by ``--user`` or ``LORE_MCP__USER``: that user's
role and grants, read again on every call, so a grant revoked meanwhile is gone from the next
call. There are no rate limits, as for the other local commands. Standard output carries the
protocol alone; logs go to standard error.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context

from api.auth import service as auth
from api.corpora.service import read_scope
from api.mcp.server import Caller, Callers, build_server
from core.db.engine import open_engine, session_factory
from core.errors import InvalidInputError
from core.resources import Resources, open_resources
from core.settings import Settings

STDIO_CREDENTIAL = "mcp-stdio"


async def _unlimited() -> None:
    return None


class StdioCallers(Callers):
    """Every call acts as ``username``, over ``resources``."""

    def __init__(self, resources: Resources, username: str) -> None:
        self._resources = resources
        self._username = username

    async def resources(self, ctx: Context) -> Resources:
        return self._resources

    async def caller(self, ctx: Context) -> Caller:
        async with self._resources.sessions() as session:
            principal = await auth.local_principal(
                session, username=self._username, credential_id=STDIO_CREDENTIAL
            )
        scope = await read_scope(self._resources, principal)
        return Caller(principal=principal, scope=scope, spend_query=_unlimited)


async def check_user(settings: Settings, username: str) -> None:
    """Refuse to start for a user who does not exist or is disabled (the client would otherwise see
    every call fail), before the models load: on the database alone."""
    engine = await open_engine(settings, migrate_sqlite=True)
    try:
        async with session_factory(engine)() as session:
            await auth.local_principal(session, username=username, credential_id=STDIO_CREDENTIAL)
    finally:
        await engine.dispose()


async def serve_stdio(settings: Settings, username: str | None) -> None:
    """Serve MCP on stdin and stdout as ``username`` until the client closes the pipe."""
    if not username:
        raise InvalidInputError(
            "lore mcp acts as a user: name one with --user NAME or LORE_MCP__USER (their grants apply)"
        )
    await check_user(settings, username)
    async with open_resources(settings, migrate_sqlite=True) as resources:
        await build_server(StdioCallers(resources, username)).run_stdio_async()
