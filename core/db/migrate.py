"""Apply and check Alembic migrations, programmatically (``lore db upgrade`` and tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at Lore's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def _alembic(engine: AsyncEngine, action: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command on a connection of ``engine``, in one transaction."""

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` up to ``revision``."""
    await _alembic(engine, command.upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Migrate the database behind ``engine`` down to ``revision``."""
    await _alembic(engine, command.downgrade, revision)


async def require_current(engine: AsyncEngine) -> None:
    """Raise a clear error when the database is not at the latest migration."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise ConfigurationError(
            f"database schema is at {current or 'nothing'}, Lore needs {head}: run `lore db upgrade` first"
        )
