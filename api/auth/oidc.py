"""Login through an external OpenID Connect provider, with authlib's Starlette client.

``/login`` sends the browser to the provider (authorization code flow with PKCE S256, state and
nonce); ``/callback`` trades the code for an ID token, verifies it and answers with Lore's own tokens.
The login state lives in a signed cookie for a few minutes, between those two requests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from joserfc.errors import JoseError
from starlette.middleware.sessions import SessionMiddleware

from api.auth import service
from api.auth.browser import set_session_cookies
from api.auth.dependencies import TokenCodecDep
from api.auth.principal import Role
from api.auth.schemas import TokenResponse
from api.auth.tokens import development_keys
from api.dependencies import ResourcesDep
from api.schemas import ErrorResponse
from core.errors import AuthenticationError, BackendError, ConfigurationError
from core.settings import Settings

PREFIX = "/v1/auth/oidc"
SESSION_COOKIE = "lore_oidc"
# Long enough to sign in at the provider, short enough that a stolen cookie soon goes stale.
SESSION_MAX_AGE_S = 600


def install_oidc(
    app: FastAPI, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None
) -> None:
    """Add the OIDC login routes and their session cookie when ``auth.oidc_issuer`` is set.

    ``transport`` carries the client's calls to the provider (default: the network), so tests need none.
    """
    auth = settings.auth
    if not auth.oidc_issuer:
        return
    if not auth.oidc_client_id:
        raise ConfigurationError("auth.oidc_issuer is set but auth.oidc_client_id is not")
    if "openid" not in auth.oidc_scopes.split():
        # Without it the provider sends no ID token, and nothing would prove who signed in.
        raise ConfigurationError(f"auth.oidc_scopes must include 'openid' (it is {auth.oidc_scopes!r})")
    client_kwargs: dict[str, Any] = {"scope": auth.oidc_scopes, "code_challenge_method": "S256"}
    if transport is not None:
        client_kwargs["transport"] = transport
    client = OAuth().register(
        name="lore",
        client_id=auth.oidc_client_id,
        client_secret=auth.oidc_client_secret.get_secret_value() if auth.oidc_client_secret else None,
        server_metadata_url=f"{auth.oidc_issuer.rstrip('/')}/.well-known/openid-configuration",
        client_kwargs=client_kwargs,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        path=PREFIX,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    login = _OidcLogin(client, issuer=auth.oidc_issuer, client_id=auth.oidc_client_id)
    app.include_router(_router(login, default_role=auth.oidc_default_role))


def _session_secret(settings: Settings) -> str:
    if settings.auth.session_secret is not None:
        return settings.auth.session_secret.get_secret_value()
    # Settings refuse OIDC in production without a secret, so this is development: a generated key,
    # kept on disk so that a login begun before a restart (or on another worker) still completes.
    keys = development_keys(settings.data_dir / "auth" / "oidc-session-key.json")
    return next(iter(keys.values()))


@dataclass(frozen=True, slots=True)
class _OidcLogin:
    """The registered authlib client and what its ID tokens must say."""

    client: Any  # authlib's StarletteOAuth2App (authlib ships no type hints)
    issuer: str
    client_id: str

    async def redirect(self, request: Request) -> RedirectResponse:
        """A redirect to the provider; the state, nonce and PKCE verifier go into the session cookie."""
        try:
            response: RedirectResponse = await self.client.authorize_redirect(
                request, request.url_for("oidc_callback")
            )
        except httpx2.HTTPError as exc:
            raise BackendError(f"the identity provider did not answer: {exc}") from None
        return response

    async def verified_claims(self, request: Request) -> dict[str, Any]:
        """The ID token's claims once state, code, signature, issuer, audience and nonce check out."""
        # authlib checks the audience only through `azp`, which a token for another client may carry
        # naming us; the issuer must be the configured one (OIDC: exactly), not the discovery document's.
        claims_options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
        }
        try:
            token = await self.client.authorize_access_token(request, claims_options=claims_options)
        except MismatchingStateError:
            raise AuthenticationError(
                f"the login state is missing, expired or does not match: start again at {PREFIX}/login"
            ) from None
        except (OAuthError, JoseError) as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise AuthenticationError(f"the OIDC login failed: {reason}") from None
        except httpx2.HTTPError as exc:
            raise BackendError(f"the identity provider did not answer: {exc}") from None
        claims: dict[str, Any] | None = token.get("userinfo")
        if claims is None:
            raise AuthenticationError("the OIDC login failed: the provider sent no ID token")
        return claims


def _router(login: _OidcLogin, *, default_role: Role) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["auth"])
    unreachable: dict[int | str, dict[str, Any]] = {
        503: {"model": ErrorResponse, "description": "The identity provider did not answer"}
    }

    @router.get(
        "/login",
        response_class=RedirectResponse,
        status_code=302,
        summary="Sign in through the identity provider (open in a browser)",
        responses=unreachable,
    )
    async def oidc_login(request: Request, web: bool = False) -> RedirectResponse:
        # ?web=1: the web app's button; the callback then sets its cookies and sends the browser back.
        request.session["lore_web"] = web
        return await login.redirect(request)

    @router.get(
        "/callback",
        name="oidc_callback",
        response_model=TokenResponse,
        summary="Where the identity provider sends the browser back: answers with Lore's tokens",
        responses={
            401: {"model": ErrorResponse, "description": "The login failed or its ID token is invalid"},
            **unreachable,
        },
    )
    async def oidc_callback(
        request: Request, resources: ResourcesDep, codec: TokenCodecDep, response: Response
    ) -> TokenResponse | RedirectResponse:
        claims = await login.verified_claims(request)
        preferred = claims.get("preferred_username")
        async with resources.sessions() as session:
            user = await service.get_or_create_oidc_user(
                session,
                issuer=login.issuer,
                subject=claims["sub"],
                preferred_username=preferred if isinstance(preferred, str) else None,
                default_role=default_role,
            )
            pair = await service.login(session, codec=codec, user=user)
        if request.session.pop("lore_web", False):
            # The web app: its refresh token in the HttpOnly cookie, never in the page or the URL.
            back = RedirectResponse("/", status_code=303)
            set_session_cookies(request, back, pair, max_age=resources.settings.auth.refresh_token_ttl_s)
            return back
        # Credentials must not be cached (RFC 6749, section 5.1), as on /v1/auth/token.
        response.headers["Cache-Control"] = "no-store"
        return TokenResponse.from_domain(pair)

    return router
