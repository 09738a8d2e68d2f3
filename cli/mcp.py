"""`lore mcp`: Lore as an MCP server over stdio, for the MCP client that starts it (docs/integrations.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.exits import run
from core.settings import get_settings


def mcp_command(
    user: Annotated[
        str | None,
        typer.Option(help="The user to act as, with their role and grants (default: LORE_MCP__USER)."),
    ] = None,
) -> None:
    """Serve MCP over stdin and stdout (tools search, ask, list_corpora, get_document; lore:// documents).

    Over HTTP, `lore serve` serves the same server at /mcp, authenticated by the bearer key.
    """
    from api.mcp.stdio import serve_stdio
    from api.ops.logs import configure_logging

    settings = get_settings()
    # Standard output is the protocol's: every log line goes to standard error.
    configure_logging()
    run(serve_stdio(settings, user or settings.mcp.user))
