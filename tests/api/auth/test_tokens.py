"""JWT access and refresh tokens: what verifies, what is refused and why, and key rotation."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from api.auth.tokens import TokenCodec, TokenKind
from core.errors import AuthenticationError, ConfigurationError
from core.settings import AuthSettings, Settings

SECRET_1 = "k1-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_2 = "k2-zyxwvutsrqponmlkjihgfedcba9876543210"


def make_codec(keys: dict[str, str], signing_kid: str | None = None, issuer: str = "lore") -> TokenCodec:
    return TokenCodec(keys, signing_kid=signing_kid, issuer=issuer, access_ttl_s=900, refresh_ttl_s=3600)


def issue(codec: TokenCodec, kind: TokenKind = "access") -> str:
    return codec.issue(kind, user_id="u1", session_id="s1", role="reader", token_id="t1")


def sign(claims: dict[str, Any], *, kid: str = "k1", secret: str = SECRET_1, alg: str = "HS256") -> str:
    key = OctKey.import_key(secret)
    return jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg])


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip_keeps_every_claim() -> None:
    codec = make_codec({"k1": SECRET_1})
    token = codec.issue("refresh", user_id="u1", session_id="s1", role="admin", token_id="t1")
    claims = codec.verify(token, kind="refresh")
    assert (claims.user_id, claims.session_id, claims.role, claims.token_id, claims.kind) == (
        "u1",
        "s1",
        "admin",
        "t1",
        "refresh",
    )
    raw = claims_of(token)
    assert raw["iss"] == "lore" and raw["typ"] == "refresh"
    assert raw["exp"] - raw["iat"] == 3600
    assert set(raw) == {"iss", "sub", "iat", "exp", "jti", "typ", "sid", "role"}


def test_expired_token_is_refused() -> None:
    codec = make_codec({"k1": SECRET_1})
    claims = claims_of(issue(codec)) | {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    with pytest.raises(AuthenticationError, match="expired"):
        codec.verify(sign(claims), kind="access")


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda c: sign(c, secret="another-secret-of-enough-length-0123456789"), "signature"),
        (lambda c: sign(c, kid="k9"), "not .or no longer. valid: k9"),
        (lambda c: f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(c)}.", "algorithm"),
        (lambda c: sign(c, alg="HS512"), "algorithm"),
        (lambda c: sign(c | {"iss": "someone-else"}), "issued by someone else"),
        (lambda c: sign({k: v for k, v in c.items() if k != "sid"}), "lacks claims: sid"),
        (lambda c: sign(c | {"role": "root"}), "'role' claim"),
        (lambda c: "not.a.token", "malformed"),
    ],
    ids=[
        "wrong-signature",
        "unknown-kid",
        "alg-none",
        "other-alg",
        "wrong-issuer",
        "no-sid",
        "bad-role",
        "garbage",
    ],
)
def test_forged_or_broken_tokens_are_refused(forge: Any, message: str) -> None:
    codec = make_codec({"k1": SECRET_1})
    with pytest.raises(AuthenticationError, match=message):
        codec.verify(forge(claims_of(issue(codec))), kind="access")


def test_token_without_kid_is_refused_even_with_one_key() -> None:
    codec = make_codec({"k1": SECRET_1})
    token = jwt.encode({"alg": "HS256"}, claims_of(issue(codec)), OctKey.import_key(SECRET_1))
    with pytest.raises(AuthenticationError, match="kid"):
        codec.verify(token, kind="access")


def test_refresh_token_is_not_an_access_token_and_back() -> None:
    codec = make_codec({"k1": SECRET_1})
    with pytest.raises(AuthenticationError, match="expected an access token"):
        codec.verify(issue(codec, "refresh"), kind="access")
    with pytest.raises(AuthenticationError, match="expected a refresh token"):
        codec.verify(issue(codec, "access"), kind="refresh")


def test_rotation_old_key_verifies_while_listed_and_fails_once_removed() -> None:
    old = make_codec({"k1": SECRET_1})
    token = issue(old)
    rotated = make_codec({"k1": SECRET_1, "k2": SECRET_2}, signing_kid="k2")
    assert rotated.verify(token, kind="access").user_id == "u1"
    new_token = issue(rotated)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "==")).get("kid") == "k2"
    after = make_codec({"k2": SECRET_2})
    assert after.verify(new_token, kind="access").user_id == "u1"
    with pytest.raises(AuthenticationError, match="no longer"):
        after.verify(token, kind="access")


def test_signing_kid_must_be_a_listed_key() -> None:
    with pytest.raises(ConfigurationError, match="k3"):
        make_codec({"k1": SECRET_1}, signing_kid="k3")


def test_development_key_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "lore")
    token = issue(TokenCodec.from_settings(settings))
    key_file = tmp_path / "lore" / "auth" / "jwt-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ((kid, secret),) = json.loads(key_file.read_text()).items()
    assert kid.startswith("dev-")
    assert len(base64.urlsafe_b64decode(secret + "==")) == 64
    # A restart reads the same key, so tokens issued before it still verify.
    assert TokenCodec.from_settings(settings).verify(token, kind="access").user_id == "u1"
    assert list(tmp_path.joinpath("lore", "auth").iterdir()) == [key_file]


def test_configured_keys_are_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "lore", auth=AuthSettings(jwt_keys={"k1": SECRET_1}))
    token = issue(TokenCodec.from_settings(settings))
    assert make_codec({"k1": SECRET_1}).verify(token, kind="access").session_id == "s1"
    assert not (tmp_path / "lore").exists()


def test_corrupt_development_key_file_is_a_clear_error(tmp_path: Path) -> None:
    key_file = tmp_path / "lore" / "auth" / "jwt-keys.json"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("[]")
    with pytest.raises(ConfigurationError, match="delete it"):
        TokenCodec.from_settings(Settings(data_dir=tmp_path / "lore"))
