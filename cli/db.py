"""`lore db ...`: the database's migrations, applied and checked."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.runtime import Database, out, with_database
from core.settings import Settings

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


async def upgrade(settings: Settings, database: Database) -> str | None:
    """Apply pending migrations (``with_database(upgrade, check_migrated=False)``); the revision after."""
    from core.db import migrate
    from core.db.engine import reaching_database

    with reaching_database(settings):
        await migrate.upgrade(database.engine)
        return await migrate.current_revision(database.engine)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to the configured database."""
    revision = with_database(upgrade, check_migrated=False)
    out.print(f"database at revision {revision}")


@db_app.command("current")
def db_current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless the database is at the latest revision.")
    ] = False,
) -> None:
    """Show the database's migration revision and the latest one."""
    from core.db import migrate
    from core.db.engine import reaching_database

    async def main(settings: Settings, database: Database) -> str | None:
        with reaching_database(settings):
            return await migrate.current_revision(database.engine)

    current = with_database(main, check_migrated=False)
    out.print(f"current: {current or 'none'}; latest: {migrate.head_revision()}")
    if check and current != migrate.head_revision():
        raise typer.Exit(1)
