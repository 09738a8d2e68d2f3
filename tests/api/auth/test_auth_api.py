"""Identity over HTTP, through the real app and its lifespan: tokens, sessions, API keys, roles."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import select

from api.app import create_app
from api.auth import service
from core.db import migrate
from core.db.engine import create_engine
from core.db.models import ApiKeyRow, CorpusRow
from core.resources import Resources
from core.settings import AuthSettings, RateLimitSettings, Settings

pytestmark = pytest.mark.models

SECRET = "k1-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD = "a long password"


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """One app for the module, with a known signing key, an admin `root` and a reader `rita`."""
    # Many logins from one test client: the per-address login limit (tested in tests/api/ops) is lifted.
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("auth") / "lore",
        auth=AuthSettings(jwt_keys={"k1": SECRET}),
        rate_limit=RateLimitSettings(login_burst=1000),
    )
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with resources_of(app).sessions() as session:
            await service.create_user(session, username="root", password=PASSWORD, role="admin")
            await service.create_user(session, username="rita", password=PASSWORD, role="reader")
            session.add(CorpusRow(id=str(uuid.uuid4()), name="handbook"))
            await session.commit()
        yield app


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lore.test") as c:
        yield c


def resources_of(app: FastAPI) -> Resources:
    resources: Resources = app.state.resources
    return resources


async def log_in(client: httpx.AsyncClient, username: str = "root") -> dict[str, Any]:
    response = await client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthenticated(response: httpx.Response, message: str = "") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert message in error["message"]


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def sign(claims: dict[str, Any], *, kid: str = "k1", secret: str = SECRET) -> str:
    return jwt.encode({"alg": "HS256", "kid": kid}, claims, OctKey.import_key(secret))


def unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims)}."


async def test_password_login_gives_bearer_tokens_that_name_the_caller(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/token", data={"username": "rita", "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    me = await client.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() | {"user_id": None} == {
        "user_id": None,
        "username": "rita",
        "role": "reader",
        "via": "token",
    }


async def test_wrong_password_is_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/token", data={"username": "rita", "password": "not it at all"})
    assert_unauthenticated(response, "wrong username or password")


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda c: sign(c | {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}), "expired"),
        (lambda c: sign(c, secret="another-secret-of-enough-length-0123456789"), "signature"),
        (lambda c: sign(c, kid="k0"), "k0"),
        (unsigned, "algorithm"),
        (lambda c: sign(c | {"typ": "refresh"}), "expected an access token"),
    ],
    ids=["expired", "wrong-signature", "unknown-kid", "alg-none", "refresh-as-access"],
)
async def test_forged_access_tokens_are_401(client: httpx.AsyncClient, forge: Any, message: str) -> None:
    claims = claims_of((await log_in(client))["access_token"])
    assert_unauthenticated(await client.get("/v1/auth/me", headers=bearer(forge(claims))), message)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic cm9vdDpwdw=="}, bearer("not-a-token")],
    ids=["none", "empty", "basic", "garbage"],
)
async def test_missing_or_malformed_credentials_are_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_unauthenticated(await client.get("/v1/auth/me", headers=headers))


async def test_logout_revokes_the_sessions_access_and_refresh_tokens(client: httpx.AsyncClient) -> None:
    tokens = await log_in(client)
    response = await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert_unauthenticated(await client.get("/v1/auth/me", headers=bearer(tokens["access_token"])), "revoked")
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unauthenticated(refreshed, "revoked")


async def test_refresh_rotates_and_reusing_a_spent_token_ends_the_session(client: httpx.AsyncClient) -> None:
    first = await log_in(client)
    response = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/auth/me", headers=bearer(second["access_token"]))).status_code == 200

    reused = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_unauthenticated(reused, "already used")
    assert_unauthenticated(await client.get("/v1/auth/me", headers=bearer(second["access_token"])), "revoked")
    # An access token is no refresh token.
    other = await log_in(client)
    wrong = await client.post("/v1/auth/refresh", json={"refresh_token": other["access_token"]})
    assert_unauthenticated(wrong, "expected a refresh token")


async def test_api_key_is_shown_once_stored_hashed_works_and_can_be_revoked(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = bearer((await log_in(client))["access_token"])
    created = await client.post("/v1/keys", json={"username": "rita", "name": "indexer"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    body = created.json()
    key = body["key"]
    assert key.startswith("lore_") and body["role"] == "reader" and body["display_prefix"] == key[:12]

    async with resources_of(app).sessions() as session:
        row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.id == body["id"]))
    assert row is not None and row.key_hash == hashlib.sha256(key.encode()).hexdigest()

    listed = (await client.get("/v1/keys", params={"username": "rita"}, headers=admin)).json()
    assert [k["id"] for k in listed] == [body["id"]] and "key" not in listed[0]
    assert key not in json.dumps(listed)

    me = await client.get("/v1/auth/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["via"] == "api_key" and me.json()["username"] == "rita"
    # An API key has no session to log out of.
    assert (await client.post("/v1/auth/logout", headers=bearer(key))).status_code == 422

    assert (await client.delete(f"/v1/keys/{body['id']}", headers=admin)).status_code == 204
    assert_unauthenticated(await client.get("/v1/auth/me", headers=bearer(key)), "revoked")
    assert (await client.delete("/v1/keys/no-such-key", headers=admin)).status_code == 404


async def test_api_key_cannot_outrank_its_owner(client: httpx.AsyncClient) -> None:
    admin = bearer((await log_in(client))["access_token"])
    body = {"username": "rita", "name": "escalate", "role": "admin"}
    response = await client.post("/v1/keys", json=body, headers=admin)
    assert response.status_code == 422 and "cannot have role admin" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/users", None),
        ("POST", "/v1/users", {"username": "mallory", "role": "admin", "password": PASSWORD}),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"username": "rita", "name": "mine"}),
        ("POST", "/v1/grants", {"username": "rita", "corpus": "handbook"}),
        ("GET", "/v1/users/rita/grants", None),
    ],
)
async def test_reader_gets_403_on_admin_routes(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    reader = bearer((await log_in(client, "rita"))["access_token"])
    response = await client.request(method, path, json=body, headers=reader)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


async def test_admin_creates_users_and_manages_grants(client: httpx.AsyncClient) -> None:
    admin = bearer((await log_in(client))["access_token"])
    new = {"username": "eve", "role": "evaluator", "password": PASSWORD}
    created = await client.post("/v1/users", json=new, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["has_password"] is True and "password" not in created.json()
    assert (await client.post("/v1/users", json=new, headers=admin)).status_code == 409
    names = [u["username"] for u in (await client.get("/v1/users", headers=admin)).json()]
    assert names == ["eve", "rita", "root"]
    assert (await log_in(client, "eve"))["token_type"] == "bearer"

    grant = {"username": "eve", "corpus": "handbook"}
    assert (await client.post("/v1/grants", json=grant, headers=admin)).status_code == 201
    assert (await client.get("/v1/users/eve/grants", headers=admin)).json() == [grant]
    assert (await client.request("DELETE", "/v1/grants", json=grant, headers=admin)).status_code == 204
    assert (await client.get("/v1/users/eve/grants", headers=admin)).json() == []
    missing = await client.post("/v1/grants", json={"username": "eve", "corpus": "nope"}, headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_openapi_offers_the_authorize_button(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    (scheme,) = schemes.values()
    assert scheme["type"] == "oauth2" and scheme["flows"]["password"]["tokenUrl"] == "v1/auth/token"
    assert spec["paths"]["/v1/auth/me"]["get"]["security"]
    assert {"/v1/auth/token", "/v1/auth/refresh", "/v1/auth/logout", "/v1/users", "/v1/keys"} <= set(
        spec["paths"]
    )


async def test_credentials_changed_in_another_process_stop_working_within_the_cache_ttl(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified key and a reader's grants are reused for `auth.credential_cache_s` (5 s);
    changes made through this app apply at once, changes made elsewhere (the CLI, another API
    process: here, the service on the database directly) once that time has passed."""
    import api.auth.cache as cache_module

    admin = bearer((await log_in(client))["access_token"])
    created = (
        await client.post("/v1/keys", json={"username": "rita", "name": "cached"}, headers=admin)
    ).json()
    key = bearer(created["key"])
    assert (
        await client.post("/v1/grants", json={"username": "rita", "corpus": "handbook"}, headers=admin)
    ).status_code == 201

    def visible() -> Any:
        return client.get("/v1/corpora", headers=key)

    # Granted through the app: visible at once, then cached with the key.
    assert [c["name"] for c in (await visible()).json()] == ["handbook"]
    async with resources_of(app).sessions() as session:
        await service.revoke_grant(session, username="rita", corpus="handbook")
        await service.revoke_api_key(session, key_id=created["id"])
    assert [c["name"] for c in (await visible()).json()] == ["handbook"]

    later = time.monotonic() + app.state.resources.settings.auth.credential_cache_s + 0.1
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: later)
    assert_unauthenticated(await visible(), "revoked")

    # A change through the app clears the cache: the grant removed here is gone on the next request.
    monkeypatch.undo()
    other = (await client.post("/v1/keys", json={"username": "rita", "name": "second"}, headers=admin)).json()
    await client.post("/v1/grants", json={"username": "rita", "corpus": "handbook"}, headers=admin)
    assert [c["name"] for c in (await client.get("/v1/corpora", headers=bearer(other["key"]))).json()] == [
        "handbook"
    ]
    removed = await client.request(
        "DELETE", "/v1/grants", json={"username": "rita", "corpus": "handbook"}, headers=admin
    )
    assert removed.status_code == 204
    assert (await client.get("/v1/corpora", headers=bearer(other["key"]))).json() == []


def test_the_credential_cache_is_off_at_zero_and_bounded() -> None:
    from api.auth.cache import CredentialCache
    from api.auth.principal import Principal

    who = Principal(user_id="u", username="rita", role="reader", via="api_key", credential_id="k")
    off = CredentialCache(0)
    off.remember_principal("lore_secret", who)
    off.remember_scope("u", frozenset({"handbook"}))
    assert off.principal("lore_secret") is None and off.scope("u") == (False, None)

    small = CredentialCache(60, max_entries=2)
    for token in ("a", "b", "c"):
        small.remember_principal(token, who)
    assert small.principal("a") is None and small.principal("c") == who
    small.remember_scope("admin", None)
    assert small.scope("admin") == (True, None)
    small.clear()
    assert small.principal("c") is None and small.scope("admin") == (False, None)
