"""The async engine and session factory for the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.db import migrate
from core.errors import BackendError, ConfigurationError
from core.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for the settings' database; SQLite gets foreign keys and WAL turned on."""
    url = settings.database_url
    if settings.uses_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=settings.database.echo, pool_pre_ping=not settings.uses_sqlite)
    if settings.uses_sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


# What a client told the database does not answer waits before retrying: about a fast restart.
DATABASE_RETRY_AFTER_S = 5.0


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, connection lost),
    rather than that a statement was wrong; the pool reconnects by itself when it is back."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        return exc.orig is not None and is_database_unavailable(exc.orig)
    # asyncpg raises a refused connection as it is, unwrapped: one address, or several tried.
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and "Multiple exceptions" in str(exc)):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)


# Connection exceptions (class 08), and the server shutting down (57P01, 57P02) or starting (57P03).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def database_setting(settings: Settings) -> str:
    """The setting that names the database, with its value (password hidden), for error messages."""
    if settings.database.url is None:
        return f"the embedded SQLite under LORE_DATA_DIR={settings.data_dir}"
    return f"LORE_DATABASE__URL={make_url(settings.database.url).render_as_string(hide_password=True)}"


@contextmanager
def reaching_database(settings: Settings) -> Iterator[None]:
    """Raise a failure to reach the database as one BackendError naming the setting and what to do."""
    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise BackendError(
            f"cannot reach the database ({database_setting(settings)}): {reason}; start the database "
            "server, or fix the setting"
        ) from None


async def open_engine(settings: Settings, *, migrate_sqlite: bool = False) -> AsyncEngine:
    """An engine on the settings' database once it answers at the latest migration; dispose of it.

    ``migrate_sqlite`` first migrates an embedded SQLite database (the CLI's single-user default).
    Raises BackendError when the database cannot be reached and ConfigurationError when it is not
    migrated, each in one line naming the setting and what to do.
    """
    engine = create_engine(settings)
    try:
        with reaching_database(settings):
            if migrate_sqlite and settings.uses_sqlite:
                await migrate.upgrade(engine)
            try:
                await migrate.require_current(engine)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{exc.message} ({database_setting(settings)})") from None
    except BaseException:
        await engine.dispose()
        raise
    return engine
