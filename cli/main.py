"""The `lore` command: ingest, reindex, ask, serve, evaluate, migrate.

This module only builds the command tree; each command lives in its own module, and what they
share (consoles, progress bars, the queue, the database) in ``cli.runtime``.
"""

from __future__ import annotations

import typer

from cli.ask import ask
from cli.batch import batch_app
from cli.crawl import crawl
from cli.db import db_app
from cli.evals import eval_app
from cli.ingest import ingest, worker
from cli.jobs import documents_app, jobs_app
from cli.mcp import mcp_command
from cli.reindex import reindex
from cli.serve import serve, served_app
from cli.users import grants_app, keys_app, users_app

__all__ = ["app", "served_app"]

app = typer.Typer(help="Lore: grounded, cited answers over your documents.", no_args_is_help=True)
# `lore --help` lists the commands in this order.
app.command("mcp")(mcp_command)
app.command()(ingest)
app.command()(worker)
app.command()(crawl)
app.command()(reindex)
app.command()(ask)
app.command()(serve)
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(jobs_app, name="jobs")
app.add_typer(documents_app, name="documents")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(grants_app, name="grants")
app.add_typer(batch_app, name="batch")
