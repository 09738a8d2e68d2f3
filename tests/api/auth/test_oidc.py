"""OIDC login against a real OpenID provider (authlib's server side) that the test serves with uvicorn.

Lore's authlib client talks HTTP to the provider; the test plays the browser between the two.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
import pytest
import uvicorn
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from fastapi import FastAPI
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.app import create_app
from api.auth import service
from api.auth.oidc import SESSION_COOKIE, install_oidc
from api.errors import install_error_handlers
from core.db import migrate
from core.db.engine import create_engine
from core.resources import Resources
from core.settings import AuthSettings, Settings

pytestmark = pytest.mark.models

LORE = "http://lore.test"
CALLBACK = f"{LORE}/v1/auth/oidc/callback"
CLIENT_ID = "lore-test-client"
CLIENT_SECRET = "a-client-secret-for-this-test-only-9f3k2"
KID = "test-signing-key"


# The identity provider: authlib's AuthorizationServer with the code grant, PKCE and OpenID Connect.


@dataclass(frozen=True)
class User:
    sub: str
    preferred_username: str


@dataclass(frozen=True)
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "profile", "email"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]
    server: Provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.codes[code] = Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = self.server.codes.get(code)
        return found if found is not None and found.client_id == client.get_client_id() else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class IdTokens(OpenIDCode):
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.signing_key

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": KID}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        # `azp` names the client even when the test sends the token to another audience, so only
        # Lore's own audience check can refuse that token.
        audience = self.provider.audience or client.get_client_id()
        return {"iss": self.provider.issuer, "aud": [audience], "azp": client.get_client_id()}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return nonce in self.provider.nonces

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return UserInfo(sub=user.sub, preferred_username=user.preferred_username)


class Provider(AuthorizationServer):
    """An OpenID provider with one confidential client that signs in ``user`` without asking."""

    def __init__(self, issuer: str, client: Client, user: User) -> None:
        super().__init__(scopes_supported=["openid", "profile", "email"])
        self.issuer = issuer
        self.client = client
        self.user = user
        self.key = RSAKey.generate_key(2048, {"kid": KID, "use": "sig", "alg": "RS256"})  # in the JWKS
        self.signing_key = self.key  # set to another key to forge signatures
        self.codes: dict[str, Code] = {}
        self.nonces: set[str] = set()
        self.audience: str | None = None  # set to issue ID tokens for another client
        self.register_token_generator("default", BearerTokenGenerator(lambda **_: generate_token(42)))
        self.register_grant(CodeGrant, [CodeChallenge(required=True), IdTokens(self)])

    def query_client(self, client_id: str) -> Client | None:
        return self.client if client_id == self.client.client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """This provider serves no resources, so its access tokens need no record."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # the routes build it, since reading a Starlette form is async

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No one listens to the provider's signals."""

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": self.scopes_supported,
        }

    def asgi(self) -> Starlette:
        async def discovery(_: Request) -> Response:
            return JSONResponse(self.metadata())

        async def jwks(_: Request) -> Response:
            return JSONResponse(KeySet([self.key]).as_dict(private=False))

        async def authorize(request: Request) -> Response:
            oauth_request = StarletteOAuth2Request(request, {})
            grant = self.get_consent_grant(oauth_request, end_user=self.user)
            response: Response = self.create_authorization_response(
                oauth_request, grant_user=self.user, grant=grant
            )
            if nonce := oauth_request.payload.data.get("nonce"):
                self.nonces.add(nonce)
            return response

        async def token(request: Request) -> Response:
            form = {key: str(value) for key, value in (await request.form()).items()}
            response: Response = self.create_token_response(StarletteOAuth2Request(request, form))
            return response

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, request: Request, form: dict[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args = dict(request.query_params)
        self._form = form
        self.payload = BasicOAuth2Payload({**self._args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[Provider]:
    sock = _free_socket()
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = Provider(
        issuer,
        Client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=CALLBACK),
        User(sub="248289761001", preferred_username="ada"),
    )
    server = uvicorn.Server(uvicorn.Config(provider.asgi(), lifespan="off", log_level="warning"))
    # Listening before uvicorn runs: connections made meanwhile wait in the backlog, not refused.
    sock.listen()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    yield provider
    server.should_exit = True
    await serving
    sock.close()


@pytest.fixture(scope="module")
async def lore_app(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> AsyncIterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("oidc") / "lore",
        auth=AuthSettings(
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_default_role="evaluator",
        ),
    )
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def lore(lore_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Lore as a browser sees it: cookies kept, redirects not followed."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lore_app), base_url=LORE) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The browser's side of the provider, over real HTTP."""
    async with httpx.AsyncClient() as client:
        yield client


async def authorize(lore: httpx.AsyncClient, browser: httpx.AsyncClient) -> str:
    """Start a login at Lore and sign in at the provider; the provider's redirect back to Lore."""
    login = await lore.get("/v1/auth/oidc/login")
    assert login.status_code == 302, login.text
    assert SESSION_COOKIE in lore.cookies
    approved = await browser.get(login.headers["location"])
    assert approved.status_code == 302, approved.text
    location: str = approved.headers["location"]
    assert location.startswith(CALLBACK)
    return location


async def sign_in(lore: httpx.AsyncClient, browser: httpx.AsyncClient) -> dict[str, Any]:
    callback = await lore.get(await authorize(lore, browser))
    assert callback.status_code == 200, callback.text
    body: dict[str, Any] = callback.json()
    return body


async def whoami(lore: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await lore.get("/v1/auth/me", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_unauthenticated(response: httpx.Response, mentioning: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert mentioning in error["message"]


async def test_login_redirects_to_the_provider_with_pkce_state_and_nonce(
    lore: httpx.AsyncClient, provider: Provider
) -> None:
    response = await lore.get("/v1/auth/oidc/login")

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.issuer}/authorize"
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == CALLBACK
    assert params["response_type"] == "code"
    assert params["scope"] == "openid profile email"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] and params["state"] and params["nonce"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "path=/v1/auth/oidc" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_first_login_creates_the_user_with_the_default_role(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    callback = await lore.get(await authorize(lore, browser))

    assert callback.status_code == 200, callback.text
    assert callback.headers["cache-control"] == "no-store"
    tokens = callback.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    me = await whoami(lore, tokens["access_token"])
    assert me["username"] == "ada"
    assert me["role"] == "evaluator"
    assert me["via"] == "token"
    # The login state is spent: the session cookie is cleared.
    assert SESSION_COOKIE not in lore.cookies


async def test_second_login_finds_the_same_user(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient, provider: Provider, lore_app: FastAPI
) -> None:
    first = await whoami(lore, (await sign_in(lore, browser))["access_token"])
    second = await whoami(lore, (await sign_in(lore, browser))["access_token"])

    assert second["user_id"] == first["user_id"]
    resources: Resources = lore_app.state.resources
    async with resources.sessions() as session:
        users = await service.list_users(session)
    oidc_users = [(u.username, u.oidc_issuer, u.oidc_subject) for u in users if u.oidc_issuer]
    assert oidc_users == [("ada", provider.issuer, provider.user.sub)]


async def test_tampered_state_is_refused(lore: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    location = urlsplit(await authorize(lore, browser))
    params = {key: values[0] for key, values in parse_qs(location.query).items()}
    params["state"] = params["state"][::-1]

    response = await lore.get(f"{CALLBACK}?{urlencode(params)}")

    assert_unauthenticated(response, "login state")


async def test_a_callback_without_the_login_cookie_is_refused(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    location = await authorize(lore, browser)
    lore.cookies.clear()

    response = await lore.get(location)

    assert_unauthenticated(response, "login state")


async def test_a_refusal_by_the_provider_is_refused(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    location = urlsplit(await authorize(lore, browser))
    state = parse_qs(location.query)["state"][0]
    denial = urlencode({"error": "access_denied", "error_description": "the user said no", "state": state})

    response = await lore.get(f"{CALLBACK}?{denial}")

    assert_unauthenticated(response, "access_denied: the user said no")


async def test_an_id_token_for_another_audience_is_refused(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient, provider: Provider
) -> None:
    provider.audience = "some-other-client"
    try:
        response = await lore.get(await authorize(lore, browser))
    finally:
        provider.audience = None

    assert_unauthenticated(response, "'aud'")


async def test_an_id_token_with_a_forged_signature_is_refused(
    lore: httpx.AsyncClient, browser: httpx.AsyncClient, provider: Provider
) -> None:
    provider.signing_key = RSAKey.generate_key(2048, {"kid": KID, "use": "sig", "alg": "RS256"})
    try:
        response = await lore.get(await authorize(lore, browser))
    finally:
        provider.signing_key = provider.key

    assert_unauthenticated(response, "bad_signature")


# install_oidc on its own: no database needed to start a login.


def bare_app(settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_oidc(app, settings, transport=transport)
    return app


def oidc_settings(tmp_path: Path, issuer: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        auth=AuthSettings(oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret="x"),
    )


async def test_the_client_reaches_the_provider_through_an_injected_transport(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 6761): the discovery document can only come through the transport.
    issuer = "https://idp.invalid"
    idp = Provider(issuer, Client(CLIENT_ID, CLIENT_SECRET, CALLBACK), User("1", "ada"))
    app = bare_app(oidc_settings(tmp_path, issuer), transport=httpx2.ASGITransport(app=idp.asgi()))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LORE) as client:
        response = await client.get("/v1/auth/oidc/login")

    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(f"{issuer}/authorize?")


async def test_an_unreachable_provider_is_a_503(tmp_path: Path) -> None:
    closed = _free_socket()
    port = closed.getsockname()[1]
    closed.close()
    app = bare_app(oidc_settings(tmp_path, f"http://127.0.0.1:{port}"))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LORE) as client:
        response = await client.get("/v1/auth/oidc/login")

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_without_an_issuer_there_are_no_oidc_routes(tmp_path: Path) -> None:
    app = bare_app(Settings(data_dir=tmp_path))

    assert not [route for route in app.routes if getattr(route, "path", "").startswith("/v1/auth/oidc")]
    assert not app.user_middleware
