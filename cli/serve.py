"""`lore serve`: the HTTP API under uvicorn, in one process or several."""

from __future__ import annotations

import socket
import sys
from typing import Annotated, Any, NoReturn

import typer

from cli.db import upgrade
from cli.exits import USAGE, fail, print_error
from cli.runtime import Database, err, with_database
from core.errors import LoreError
from core.settings import Settings, get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes (uvicorn workers); more than one needs the Qdrant server "
            "(LORE_VECTOR_STORE__URL) and should have Redis and PostgreSQL.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from api.ops.readiness import Readiness

    settings = get_settings()
    if workers > 1 and settings.vector_store.url is None:
        raise fail(
            "--workers needs a Qdrant server (LORE_VECTOR_STORE__URL): the embedded store under the "
            "data dir is opened by one process only"
        )
    host = host or settings.server.host
    port = port or settings.server.port
    if settings.uses_sqlite:
        # Migrations run before the app starts, never inside it.
        with_database(upgrade, settings=settings, check_migrated=False)
    first_key = _bootstrap_admin(settings) if settings.environment == "development" else None

    announce: list[str] = []

    def ready(readiness: Readiness) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"{shown}:{port}"
        if readiness.status != "ready":
            # What /ready says: degraded still answers (without the cache, queue or shared limits).
            what = ", ".join(f"{name} {readiness.checks[name]}" for name in readiness.failed)
            err.print(
                f"Lore is {readiness.status} on http://{base}: {what} (GET /ready; the log above says "
                "why; docs/operations.md says what Lore does without each)",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
            return
        if first_key is None:
            err.print(
                "To get an API key: [bold]export LORE_KEY=$(lore keys create --user admin | tail -1)[/] "
                "(or log in: curl -s -X POST " + base + "/v1/auth/token -d username=NAME -d password=...)",
                soft_wrap=True,
            )
        key = first_key or "$LORE_KEY"
        err.print(
            f"Lore is ready on http://{base} (API docs at /docs). From a terminal:\n"
            f"  curl -s -X POST {base}/v1/query -H 'content-type: application/json' "
            f'-H "Authorization: Bearer {key}" '
            '-d \'{"question": "How do I ingest documents?"}\'',
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        # Where to open the web app, and how to sign in the first time: printed once uvicorn has
        # said it is running, so that it is the last line (what `make demo` leaves on screen).
        password = first_password(settings)
        login = f" and sign in as admin with password {password}" if password else ""
        announce.append(f"Open the web app: http://{base}/{login}")

    from api.ops.logs import configure_logging

    configure_logging()
    # X-Forwarded-For names the client only when a trusted proxy sent it: the login limit is per
    # client address, and uvicorn would otherwise believe the header from 127.0.0.1.
    trusted = settings.server.trusted_proxies
    proxies: dict[str, Any] = {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
    if workers > 1:
        # Each worker process builds its own app (and resources) from the same environment.
        uvicorn.run(
            "cli.serve:served_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            **proxies,
        )
        return
    config = uvicorn.Config(
        create_app(settings, on_ready=ready, on_failure=_startup_failed),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **proxies,
    )

    class AnnouncingServer(uvicorn.Server):
        """uvicorn's server, printing ``announce`` once it has started (after its own log lines)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                for line in announce:
                    err.print(line, soft_wrap=True, markup=False, highlight=False)

    AnnouncingServer(config).run()


def served_app() -> Any:
    """The app one of `lore serve --workers N`'s processes builds, logging as `lore serve` does."""
    from api.app import create_app
    from api.ops.logs import configure_logging

    configure_logging()
    return create_app(on_failure=_startup_failed)


def _startup_failed(exc: LoreError) -> NoReturn:
    """End `lore serve` on a Lore error at start-up (a database or Redis that does not answer...).

    uvicorn would log the traceback the app's lifespan raised and "Application startup failed";
    the error says in one line which setting to fix, so that line alone is printed, and the process
    exits with status 2 like every command that cannot start (the resources are closed already).
    """
    import os

    print_error(exc.message)
    sys.stderr.flush()
    os._exit(USAGE)


def _bootstrap_admin(settings: Settings) -> str | None:
    """On a development install with no users yet, create `admin` and print its credentials once.

    Returns the new admin's API key, or None when users already exist.
    """
    created = with_database(_create_first_admin, settings=settings, migrate_sqlite=False)
    if created is None:
        return None
    password, key = created
    _keep_first_password(settings, password)
    err.print(
        "First start (development): created the admin user [bold]admin[/] with\n"
        f"  password: {password}\n  API key:  {key}\n"
        f"The key is shown only now; the password is kept in {settings.data_dir / _FIRST_PASSWORD}\n"
        "(readable by you alone; delete it once noted). More keys: lore keys create --user admin",
        soft_wrap=True,
        highlight=False,
    )
    return key


_FIRST_PASSWORD = "first-admin-password"


def _keep_first_password(settings: Settings, password: str) -> None:
    """Keep the first admin's password (development only) readable by its owner alone, so that every
    `make demo` can say how to sign in; delete the file once the password is changed or noted."""
    import os

    path = settings.data_dir / _FIRST_PASSWORD
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")


def first_password(settings: Settings) -> str | None:
    """The first admin's password a development first start kept, while its file is there."""
    if settings.environment != "development":
        return None
    try:
        return (settings.data_dir / _FIRST_PASSWORD).read_text().strip() or None
    except OSError:
        return None


async def _create_first_admin(settings: Settings, database: Database) -> tuple[str, str] | None:
    """The user `admin` with a new password and API key, when there are no users: (password, key)."""
    import secrets

    from api.auth import service as auth

    async with database.sessions() as session:
        if await auth.list_users(session):
            return None
        password = secrets.token_urlsafe(12)
        user = await auth.create_user(session, username="admin", password=password, role="admin")
        key = await auth.create_api_key(
            session, user=user, name="first-admin", prefix=settings.auth.api_key_prefix
        )
        await session.commit()
    return password, key.plaintext
