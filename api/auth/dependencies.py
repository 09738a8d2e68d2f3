"""Route guards: who is calling (``CurrentPrincipal``) and whether their role may (``require_role``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from api.auth import service
from api.auth.cache import CredentialCache, get_credential_cache
from api.auth.principal import Principal, Role
from api.auth.tickets import TICKET_PARAM, opens_with_ticket
from api.auth.tokens import TokenCodec, token_codec
from api.dependencies import ResourcesDep, on_loop
from core.errors import AuthenticationError, PermissionDeniedError
from core.resources import Resources

# Reads `Authorization: Bearer ...` and gives /docs an Authorize button that logs in with the
# password flow; API keys travel in the same header.
bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="v1/auth/token",
    auto_error=False,
    description="A JWT access token from /v1/auth/token, or an API key, as `Authorization: Bearer ...`.",
)


async def authenticate_bearer(
    resources: Resources, token: str, cache: CredentialCache | None = None
) -> Principal:
    """The caller behind a bearer credential: an API key when it has the key prefix, else a JWT.

    A credential verified within the last ``auth.credential_cache_s`` seconds is not read again
    (``cache``); a rejected one is never cached.
    """
    if cache is not None and (known := cache.principal(token)) is not None:
        return known
    settings = resources.settings
    async with resources.sessions() as session:
        if token.startswith(settings.auth.api_key_prefix):
            principal = await service.verify_api_key(session, key=token)
        else:
            principal = await service.principal_for_access_token(
                session, codec=token_codec(settings), token=token
            )
    if cache is not None:
        cache.remember_principal(token, principal)
    return principal


CredentialCacheDep = Annotated[CredentialCache | None, Depends(on_loop(get_credential_cache))]


async def get_principal(
    resources: ResourcesDep,
    cache: CredentialCacheDep,
    token: Annotated[str | None, Security(bearer_scheme)],
    connection: HTTPConnection,
) -> Principal:
    """The authenticated caller; :class:`AuthenticationError` (401) without valid credentials.

    Without a header, a GET of a route a ticket opens may carry one (``?ticket=``: api/auth/tickets.py).
    """
    ticket = connection.query_params.get(TICKET_PARAM)
    if not token and ticket and connection.scope.get("method") in ("GET", "HEAD"):
        path = connection.url.path
        if not opens_with_ticket(path):
            raise AuthenticationError("a ticket opens an eval report or a document's original only")
        async with resources.sessions() as session:
            return await service.principal_for_ticket(
                session, codec=token_codec(resources.settings), ticket=ticket, path=path
            )
    if not token:
        raise AuthenticationError("no credentials: send `Authorization: Bearer <access token or API key>`")
    return await authenticate_bearer(resources, token, cache)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the caller when their role is one of ``roles``, else 403."""
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError(
                f"this needs the role {' or '.join(roles)}; the caller is {principal.role}"
            )
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_role("admin"))]
EvaluatorPrincipal = Annotated[Principal, Depends(require_role("evaluator", "admin"))]
ReaderPrincipal = Annotated[Principal, Depends(require_role("reader", "evaluator", "admin"))]


async def get_token_codec(resources: ResourcesDep) -> TokenCodec:
    """The app's token codec."""
    return token_codec(resources.settings)


TokenCodecDep = Annotated[TokenCodec, Depends(get_token_codec)]
