"""`lore users`, `lore keys`, `lore grants`: manage who may use the API, without the API running."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich import box
from rich.table import Table

from api.auth.principal import Role
from cli.exits import fail
from cli.runtime import Database, err, out, with_database
from core.settings import Settings, get_settings

# Commands import api.auth.service (SQLAlchemy, JOSE) when they run, so `lore --help` stays quick.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.auth.service import ApiKeyListing, NewApiKey

users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for services.", no_args_is_help=True)
grants_app = typer.Typer(help="Which corpora a user may read.", no_args_is_help=True)

T = TypeVar("T")

RoleOption = Annotated[Role, typer.Option(help="reader, evaluator or admin.")]


def _with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in a database session (an embedded SQLite is migrated first); errors exit 2."""

    async def main(_: Settings, database: Database) -> T:
        async with database.sessions() as session:
            return await work(session)

    return with_database(main)


def _table(*headers: str) -> Table:
    # IDs are copied into other commands, so they are never cut, even in a narrow or piped terminal.
    table = Table(box=box.SIMPLE)
    for header in headers:
        table.add_column(header, no_wrap=header == "id", overflow="fold")
    return table


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="The login name.")],
    role: RoleOption = "reader",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: the user signs in only through OIDC.")
    ] = False,
) -> None:
    """Create a user, e.g. `printf %s "$PW" | lore users create alice --role admin --password-stdin`."""
    from api.auth import service

    if password_stdin == no_password:
        raise fail("give exactly one of --password-stdin and --no-password")
    password = sys.stdin.read().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise fail("standard input held no password")

    async def work(session: AsyncSession) -> str:
        return (await service.create_user(session, username=username, password=password, role=role)).id

    user_id = _with_session(work)
    out.print(f"created {role} {username!r} ({user_id})", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """List users with their roles."""
    from api.auth import service

    users = _with_session(service.list_users)
    table = _table("username", "role", "sign-in", "disabled", "created")
    for user in users:
        sign_in = "password" if user.password_hash else "OIDC"
        table.add_row(
            user.username, user.role, sign_in, "yes" if user.disabled else "", f"{user.created_at:%Y-%m-%d}"
        )
    out.print(table)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="The user the key acts for.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    role: Annotated[
        Role | None, typer.Option(help="The key's role (default and ceiling: the user's).")
    ] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line of standard output."""
    from api.auth import service

    prefix = get_settings().auth.api_key_prefix

    async def work(session: AsyncSession) -> NewApiKey:
        owner = await service.get_user_by_name(session, username=user)
        return await service.create_api_key(session, user=owner, name=name, role=role, prefix=prefix)

    new = _with_session(work)
    err.print(
        f"created {new.row.role} key {new.row.id} for {user!r}; store it now, Lore keeps only its hash:",
        highlight=False,
    )
    print(new.plaintext)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
) -> None:
    """List API keys (never the keys themselves)."""
    from api.auth import service

    async def work(session: AsyncSession) -> list[ApiKeyListing]:
        return await service.list_api_keys(session, username=user)

    table = _table("id", "user", "name", "role", "prefix", "last used", "revoked")
    for listing in _with_session(work):
        key = listing.row
        table.add_row(
            key.id,
            listing.username,
            key.name,
            key.role,
            f"{key.display_prefix}...",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's ID (`lore keys list`).")],
) -> None:
    """Revoke an API key: requests with it fail from now on."""
    from api.auth import service

    async def work(session: AsyncSession) -> None:
        await service.revoke_api_key(session, key_id=key_id)

    _with_session(work)
    out.print(f"revoked key {key_id}", highlight=False)


@grants_app.command("add")
def grants_add(
    user: Annotated[str, typer.Argument(metavar="USER")],
    corpus: Annotated[str, typer.Argument(metavar="CORPUS")],
) -> None:
    """Let a user read a corpus."""
    from api.auth import service

    async def work(session: AsyncSession) -> None:
        await service.grant(session, username=user, corpus=corpus)

    _with_session(work)
    out.print(f"{user!r} may read corpus {corpus!r}", highlight=False)


@grants_app.command("remove")
def grants_remove(
    user: Annotated[str, typer.Argument(metavar="USER")],
    corpus: Annotated[str, typer.Argument(metavar="CORPUS")],
) -> None:
    """Take a corpus away from a user."""
    from api.auth import service

    async def work(session: AsyncSession) -> None:
        await service.revoke_grant(session, username=user, corpus=corpus)

    _with_session(work)
    out.print(f"{user!r} may no longer read corpus {corpus!r}", highlight=False)


@grants_app.command("list")
def grants_list(user: Annotated[str, typer.Argument(metavar="USER")]) -> None:
    """The corpora a user may read, one a line."""
    from api.auth import service

    async def work(session: AsyncSession) -> set[str]:
        owner = await service.get_user_by_name(session, username=user)
        return await service.granted_corpora(session, user_id=owner.id)

    for corpus in sorted(_with_session(work)):
        print(corpus)
