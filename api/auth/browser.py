"""Browser sessions: the web app's login, where no long-lived secret is readable by page scripts.

The refresh token lives only in the ``lore_refresh`` cookie: ``HttpOnly``, ``SameSite=Strict``,
``Secure`` (except on a loopback address, where browsers allow it over plain HTTP), on the path of
the one route that reads it. The access token goes to the page in the response body and stays in
its memory. The page restores a session after a reload by calling the refresh route.

CSRF: the refresh route is the only one a cookie authenticates; it needs an ``X-CSRF-Token``
header equal to the digest of the refresh cookie, which the page reads from the ``lore_csrf``
cookie. Another site can neither read that cookie nor send a custom header without a CORS
preflight, and ``SameSite=Strict`` already keeps the refresh cookie off cross-site requests. Every
other write is authenticated by the bearer token in the page's memory, which no other site has.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, SecretStr

from api.auth import service
from api.auth.cache import forget_credentials
from api.auth.dependencies import CredentialCacheDep, CurrentPrincipal, TokenCodecDep
from api.auth.service import TokenPair
from api.auth.tickets import TICKET_PARAM, opens_with_ticket
from api.auth.tokens import TICKET_TTL_S
from api.dependencies import ResourcesDep
from api.ops.ratelimit import LoginRateLimit, spend_password_login
from api.schemas import ErrorResponse
from core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError

PREFIX = "/v1/auth/session"
REFRESH_PATH = f"{PREFIX}/refresh"
REFRESH_COOKIE = "lore_refresh"
CSRF_COOKIE = "lore_csrf"
CSRF_HEADER = "X-CSRF-Token"

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_UNAUTHENTICATED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Wrong credentials, or no live browser session"},
}


class SessionLogin(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=1, max_length=1000)


class SessionTokens(BaseModel):
    """The access token only: the refresh token is in the HttpOnly cookie."""

    access_token: str = Field(description="Send as `Authorization: Bearer <token>`; keep it in memory.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires: refresh before then.")


def csrf_token(refresh_token: str) -> str:
    """The CSRF token of a refresh token: a digest, so it tells nothing of the token itself."""
    return hashlib.sha256(b"lore-csrf\0" + refresh_token.encode()).hexdigest()


def _loopback(request: Request) -> bool:
    host = (request.url.hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_session_cookies(request: Request, response: Response, pair: TokenPair, *, max_age: int) -> None:
    """Put a login's refresh token in its cookie, and its CSRF token in the page-readable one."""
    secure = not _loopback(request)
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=max_age,
        path=REFRESH_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token(pair.refresh_token),
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"


def _clear_cookies(request: Request, response: Response) -> None:
    secure = not _loopback(request)
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH, secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")


def _same_origin(request: Request) -> None:
    """Refuse a request a browser sent from another origin (its Origin header names that origin)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    expected = f"{request.url.scheme}://{request.url.netloc}"
    if origin.rstrip("/") != expected:
        raise PermissionDeniedError(f"a browser session is used from its own origin only, not {origin}")


@router.post(
    "/session",
    response_model=SessionTokens,
    responses=_UNAUTHENTICATED,
    summary="Log in from a browser: the access token in the body, the refresh token in an HttpOnly cookie",
)
async def open_session(
    body: SessionLogin, request: Request, response: Response, resources: ResourcesDep, codec: TokenCodecDep
) -> SessionTokens:
    _same_origin(request)
    # The password logins' limits, as on /v1/auth/token (whose body is a form, this one JSON).
    await spend_password_login(request, response, username=body.username)
    async with resources.sessions() as session:
        user = await service.authenticate(
            session, username=body.username, password=body.password.get_secret_value()
        )
        pair = await service.login(session, codec=codec, user=user)
    set_session_cookies(request, response, pair, max_age=resources.settings.auth.refresh_token_ttl_s)
    return SessionTokens(access_token=pair.access_token, expires_in=pair.expires_in)


@router.post(
    "/session/refresh",
    dependencies=[LoginRateLimit],
    response_model=SessionTokens,
    responses={
        **_UNAUTHENTICATED,
        403: {"model": ErrorResponse, "description": "Missing or wrong X-CSRF-Token, or another origin"},
    },
    summary="New tokens for the browser session in the cookie (needs the X-CSRF-Token header)",
)
async def refresh_session(
    request: Request,
    response: Response,
    resources: ResourcesDep,
    codec: TokenCodecDep,
    credentials: CredentialCacheDep,
) -> SessionTokens:
    _same_origin(request)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not refresh_token:
        raise AuthenticationError("no browser session: log in")
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(refresh_token).encode()):
        raise PermissionDeniedError(
            f"the {CSRF_HEADER} header is missing or wrong: send the value of the {CSRF_COOKIE} cookie"
        )
    try:
        async with resources.sessions() as session:
            pair = await service.refresh(session, codec=codec, refresh_token=refresh_token)
    except AuthenticationError:
        # A spent refresh token revoked its whole session: its access tokens go too.
        forget_credentials(credentials)
        raise
    forget_credentials(credentials)
    set_session_cookies(request, response, pair, max_age=resources.settings.auth.refresh_token_ttl_s)
    return SessionTokens(access_token=pair.access_token, expires_in=pair.expires_in)


@router.delete(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_UNAUTHENTICATED,
    summary="Log out of the browser session: its tokens stop working and its cookies are cleared",
)
async def close_session(
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    resources: ResourcesDep,
    credentials: CredentialCacheDep,
) -> None:
    if principal.via != "token":
        raise InvalidInputError("an API key has no browser session to end")
    async with resources.sessions() as session:
        await service.logout(session, session_id=principal.credential_id)
    forget_credentials(credentials)
    _clear_cookies(request, response)


class OidcProvider(BaseModel):
    login_url: str = Field(description="Open it in the browser to sign in through the provider.")


class Providers(BaseModel):
    password: bool = True
    oidc: OidcProvider | None = Field(description="The OIDC provider, when one is configured.")


@router.get(
    "/providers", response_model=Providers, summary="How one can sign in here (no credentials needed)"
)
async def providers(resources: ResourcesDep) -> Providers:
    configured = resources.settings.auth.oidc_issuer is not None
    return Providers(oidc=OidcProvider(login_url="/v1/auth/oidc/login?web=1") if configured else None)


class TicketRequest(BaseModel):
    path: str = Field(
        max_length=500,
        description="The path to open: /v1/evals/runs/{id}/report, /v1/evals/compare/report or "
        "/v1/documents/{id}/file (a query string, e.g. ?a=&b=, is added to the URL as given).",
    )


class Ticket(BaseModel):
    url: str = Field(description="The path with ?ticket= (and the query given): open it within a minute.")
    expires_in: int = Field(description="Seconds the ticket works.")


@router.post(
    "/tickets",
    response_model=Ticket,
    responses={
        **_UNAUTHENTICATED,
        422: {"model": ErrorResponse, "description": "A path no ticket opens, or an API key as caller"},
    },
    summary="A one-minute ticket for one URL that a frame or a download opens (no header to send)",
)
async def issue_ticket(
    body: TicketRequest, principal: CurrentPrincipal, codec: TokenCodecDep, response: Response
) -> Ticket:
    path, _, query = body.path.partition("?")
    if not opens_with_ticket(path):
        raise InvalidInputError(f"no ticket opens {path!r}: only eval reports and documents' originals")
    if principal.via != "token":
        raise InvalidInputError("tickets are for signed-in sessions: an API key can send its header")
    ticket = service.issue_ticket(codec, principal, path)
    params = "&".join(p for p in (query, f"{TICKET_PARAM}={quote(ticket)}") if p)
    response.headers["Cache-Control"] = "no-store"
    return Ticket(url=f"{path}?{params}", expires_in=TICKET_TTL_S)
