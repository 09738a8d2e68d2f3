"""Identity routes: log in, refresh, log out, who am I; admins manage users, API keys and grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from api.auth import browser, service
from api.auth.cache import CredentialCache, forget_credentials
from api.auth.dependencies import AdminPrincipal, CredentialCacheDep, CurrentPrincipal, TokenCodecDep
from api.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    Grant,
    PrincipalPublic,
    RefreshRequest,
    TokenResponse,
    UserCreate,
    UserPublic,
)
from api.auth.tokens import token_codec
from api.dependencies import ResourcesDep
from api.ops.ratelimit import AdminRateLimit, LoginRateLimit, PasswordLoginRateLimit
from api.schemas import ErrorResponse
from core.errors import InvalidInputError
from core.settings import Settings

router = APIRouter(prefix="/v1")

_UNAUTHENTICATED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing, invalid, expired or revoked credentials"},
}
_ADMIN: dict[int | str, dict[str, object]] = {
    **_UNAUTHENTICATED,
    403: {"model": ErrorResponse, "description": "The caller is not an admin"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}
_ADMIN_LOOKUP: dict[int | str, dict[str, object]] = {
    **_ADMIN,
    404: {"model": ErrorResponse, "description": "No such user, corpus or key"},
}


def _no_store(response: Response) -> None:
    # Responses carrying credentials must not be cached (RFC 6749, section 5.1).
    response.headers["Cache-Control"] = "no-store"


@router.post(
    "/auth/token",
    dependencies=[PasswordLoginRateLimit],
    response_model=TokenResponse,
    responses=_UNAUTHENTICATED,
    tags=["auth"],
    summary="Log in: a username and password for access and refresh tokens (OAuth2 password flow)",
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    resources: ResourcesDep,
    codec: TokenCodecDep,
    response: Response,
) -> TokenResponse:
    async with resources.sessions() as session:
        user = await service.authenticate(session, username=form.username, password=form.password)
        pair = await service.login(session, codec=codec, user=user)
    _no_store(response)
    return TokenResponse.from_domain(pair)


@router.post(
    "/auth/refresh",
    dependencies=[LoginRateLimit],
    response_model=TokenResponse,
    responses=_UNAUTHENTICATED,
    tags=["auth"],
    summary="Trade a refresh token for new tokens",
    description=(
        "The refresh token is spent: use the new one next time. Presenting a spent refresh token "
        "revokes the whole session, since it means someone else holds a copy."
    ),
)
async def refresh(
    body: RefreshRequest,
    resources: ResourcesDep,
    codec: TokenCodecDep,
    response: Response,
    credentials: CredentialCacheDep,
) -> TokenResponse:
    try:
        async with resources.sessions() as session:
            pair = await service.refresh(session, codec=codec, refresh_token=body.refresh_token)
    finally:
        # A spent refresh token revokes its whole session (and raises): its access tokens go too.
        forget_credentials(credentials)
    _no_store(response)
    return TokenResponse.from_domain(pair)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_UNAUTHENTICATED,
    tags=["auth"],
    summary="Log out: the session's access and refresh tokens stop working",
)
async def logout(
    principal: CurrentPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> None:
    if principal.via != "token":
        raise InvalidInputError(
            "an API key has no session to end: an admin revokes it at DELETE /v1/keys/{id}"
        )
    async with resources.sessions() as session:
        await service.logout(session, session_id=principal.credential_id)
    forget_credentials(credentials)


@router.get(
    "/auth/me",
    response_model=PrincipalPublic,
    responses=_UNAUTHENTICATED,
    tags=["auth"],
    summary="Who the caller is",
)
async def me(principal: CurrentPrincipal) -> PrincipalPublic:
    return PrincipalPublic.from_domain(principal)


@router.post(
    "/users",
    dependencies=[AdminRateLimit],
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**_ADMIN, 409: {"model": ErrorResponse, "description": "The username is taken"}},
    tags=["users"],
    summary="Create a user",
)
async def create_user(body: UserCreate, _: AdminPrincipal, resources: ResourcesDep) -> UserPublic:
    password = body.password.get_secret_value() if body.password is not None else None
    async with resources.sessions() as session:
        user = await service.create_user(session, username=body.username, password=password, role=body.role)
    return UserPublic.from_row(user)


@router.get(
    "/users",
    dependencies=[AdminRateLimit],
    response_model=list[UserPublic],
    responses=_ADMIN,
    tags=["users"],
    summary="List users",
)
async def list_users(_: AdminPrincipal, resources: ResourcesDep) -> list[UserPublic]:
    async with resources.sessions() as session:
        return [UserPublic.from_row(user) for user in await service.list_users(session)]


@router.post(
    "/keys",
    dependencies=[AdminRateLimit],
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_ADMIN_LOOKUP,
    tags=["api keys"],
    summary="Create an API key for a user; the key is in this response only",
)
async def create_key(
    body: ApiKeyCreate, _: AdminPrincipal, resources: ResourcesDep, response: Response
) -> ApiKeyCreated:
    async with resources.sessions() as session:
        user = await service.get_user_by_name(session, username=body.username)
        new = await service.create_api_key(
            session, user=user, name=body.name, role=body.role, prefix=resources.settings.auth.api_key_prefix
        )
    _no_store(response)
    return ApiKeyCreated.from_new(new, username=user.username)


@router.get(
    "/keys",
    dependencies=[AdminRateLimit],
    response_model=list[ApiKeyPublic],
    responses=_ADMIN_LOOKUP,
    tags=["api keys"],
    summary="List API keys (never the keys themselves), of one user or of all",
)
async def list_keys(
    _: AdminPrincipal, resources: ResourcesDep, username: str | None = None
) -> list[ApiKeyPublic]:
    async with resources.sessions() as session:
        listings = await service.list_api_keys(session, username=username)
    return [ApiKeyPublic.from_listing(listing) for listing in listings]


@router.delete(
    "/keys/{key_id}",
    dependencies=[AdminRateLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_ADMIN_LOOKUP,
    tags=["api keys"],
    summary="Revoke an API key",
)
async def revoke_key(
    key_id: str, _: AdminPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> None:
    async with resources.sessions() as session:
        await service.revoke_api_key(session, key_id=key_id)
    forget_credentials(credentials)


@router.post(
    "/grants",
    dependencies=[AdminRateLimit],
    response_model=Grant,
    status_code=status.HTTP_201_CREATED,
    responses=_ADMIN_LOOKUP,
    tags=["grants"],
    summary="Let a user read a corpus",
)
async def add_grant(
    body: Grant, _: AdminPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> Grant:
    async with resources.sessions() as session:
        await service.grant(session, username=body.username, corpus=body.corpus)
    forget_credentials(credentials)
    return body


@router.delete(
    "/grants",
    dependencies=[AdminRateLimit],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_ADMIN_LOOKUP,
    tags=["grants"],
    summary="Take a corpus away from a user",
)
async def remove_grant(
    body: Grant, _: AdminPrincipal, resources: ResourcesDep, credentials: CredentialCacheDep
) -> None:
    async with resources.sessions() as session:
        await service.revoke_grant(session, username=body.username, corpus=body.corpus)
    forget_credentials(credentials)


@router.get(
    "/users/{username}/grants",
    dependencies=[AdminRateLimit],
    response_model=list[Grant],
    responses=_ADMIN_LOOKUP,
    tags=["grants"],
    summary="The corpora a user may read",
)
async def list_grants(username: str, _: AdminPrincipal, resources: ResourcesDep) -> list[Grant]:
    async with resources.sessions() as session:
        user = await service.get_user_by_name(session, username=username)
        corpora = await service.granted_corpora(session, user_id=user.id)
    return [Grant(username=user.username, corpus=name) for name in sorted(corpora)]


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Add the identity routes, and load (in development: generate) the JWT keys now, not on first use."""
    token_codec(settings)
    app.state.credentials = CredentialCache(settings.auth.credential_cache_s)
    app.include_router(router)
    app.include_router(browser.router)
