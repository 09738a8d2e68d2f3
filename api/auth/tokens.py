"""JWT access and refresh tokens, HS256 over a key set so signing keys rotate without logging anyone out.

Every token names its key in the header (``kid``); a token verifies while its key is still listed in
``auth.jwt_keys``, whichever key signs new tokens.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import GuestProtocol, KeySet, OctKey
from joserfc.jwt import JWTClaimsRegistry

from api.auth.principal import ROLES, Role
from core.errors import AuthenticationError, ConfigurationError
from core.settings import Settings

TokenKind = Literal["access", "refresh", "ticket"]
# A ticket opens one URL of the session's for a minute: a frame or a download, which sends no header.
TICKET_TTL_S = 60
ALGORITHM = "HS256"
# Tolerated clock difference between the API replicas that sign and verify.
LEEWAY_S = 30


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: str
    session_id: str
    role: Role
    token_id: str
    kind: TokenKind
    expires_at: int
    path: str | None = None  # a ticket's: the one path it opens


class TokenCodec:
    """Signs and verifies Lore's tokens; :func:`token_codec` gives the one for a settings object."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        signing_kid: str | None = None,
        issuer: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
    ) -> None:
        if not keys:
            raise ConfigurationError("no JWT keys: set LORE_AUTH__JWT_KEYS")
        self.signing_kid = signing_kid or next(iter(keys))
        if self.signing_kid not in keys:
            raise ConfigurationError(
                f"auth.jwt_signing_kid {self.signing_kid!r} is not a key of auth.jwt_keys"
            )
        self._kids = frozenset(keys)
        self._keys = KeySet(
            [OctKey.import_key(secret, {"kid": kid, "alg": ALGORITHM}) for kid, secret in keys.items()]
        )
        self.issuer = issuer
        self.ttl_s: dict[TokenKind, int] = {
            "access": access_ttl_s,
            "refresh": refresh_ttl_s,
            "ticket": TICKET_TTL_S,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        """A codec with the configured keys (in development without keys: a generated, persisted one)."""
        auth = settings.auth
        if auth.jwt_keys:
            keys = {kid: secret.get_secret_value() for kid, secret in auth.jwt_keys.items()}
        else:
            # Settings refuse production without keys, so this is development.
            keys = development_keys(settings.data_dir / "auth" / "jwt-keys.json")
        return cls(
            keys,
            signing_kid=auth.jwt_signing_kid,
            issuer=auth.issuer,
            access_ttl_s=auth.access_token_ttl_s,
            refresh_ttl_s=auth.refresh_token_ttl_s,
        )

    def issue(
        self,
        kind: TokenKind,
        *,
        user_id: str,
        session_id: str,
        role: Role,
        token_id: str,
        path: str | None = None,
    ) -> str:
        """A signed token of ``kind`` for a user's auth session (a ticket: for ``path`` only)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user_id,
            "iat": now,
            "exp": now + self.ttl_s[kind],
            "jti": token_id,
            "typ": kind,
            "sid": session_id,
            "role": role,
        }
        if path is not None:
            claims["path"] = path
        header = {"alg": ALGORITHM, "kid": self.signing_kid}
        return jwt.encode(header, claims, self._keys, algorithms=[ALGORITHM])

    def verify(self, token: str, *, kind: TokenKind) -> TokenClaims:
        """The claims of a valid token of ``kind``; :class:`AuthenticationError` says why one is not."""
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            sub={"essential": True},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
            sid={"essential": True},
            typ={"essential": True, "value": kind},
            role={"essential": True, "values": [str(role) for role in ROLES]},
        )
        try:
            # Only HS256: `alg: none` and algorithm confusion are refused before any key is used.
            claims = jwt.decode(token, self._verification_keys, algorithms=[ALGORITHM]).claims
            registry.validate(claims)
        except ExpiredTokenError:
            raise AuthenticationError(f"the {kind} token has expired") from None
        except BadSignatureError:
            raise AuthenticationError("the token's signature is invalid") from None
        except UnsupportedAlgorithmError:
            raise AuthenticationError(f"the token's algorithm is not accepted (only {ALGORITHM})") from None
        except MissingClaimError as exc:
            raise AuthenticationError(f"the token lacks claims: {exc.claim}") from None
        except ClaimError as exc:
            raise AuthenticationError(_claim_message(exc.claim, kind)) from None
        except (JoseError, ValueError):
            raise AuthenticationError("the token is malformed") from None
        return TokenClaims(
            user_id=claims["sub"],
            session_id=str(claims["sid"]),
            role=cast(Role, claims["role"]),
            token_id=claims["jti"],
            kind=kind,
            expires_at=int(claims["exp"]),
            path=str(claims["path"]) if "path" in claims else None,
        )

    def _verification_keys(self, token: GuestProtocol) -> KeySet:
        # A token must name a listed key: with one key joserfc would otherwise take it for a token
        # without `kid`, and a removed key must fail clearly.
        kid = token.headers().get("kid")
        if not isinstance(kid, str):
            raise AuthenticationError("the token names no signing key (kid)")
        if kid not in self._kids:
            raise AuthenticationError(
                f"the token was signed with a key that is not (or no longer) valid: {kid}"
            )
        return self._keys


# One codec per settings object, so code holding only the resources reaches the app's codec. The
# settings are kept alive with it, so their id() is never reused by another object.
_CODECS: dict[int, tuple[Settings, TokenCodec]] = {}


def token_codec(settings: Settings) -> TokenCodec:
    """The codec for ``settings``: built on first use (keys loaded or generated then), then reused."""
    entry = _CODECS.get(id(settings))
    if entry is None:
        entry = _CODECS[id(settings)] = (settings, TokenCodec.from_settings(settings))
    return entry[1]


def _claim_message(claim: str, kind: TokenKind) -> str:
    if claim == "iss":
        return "the token was issued by someone else"
    if claim == "typ":
        return f"expected {'an access' if kind == 'access' else 'a ' + kind} token"
    return f"the token's {claim!r} claim is invalid"


def development_keys(path: Path) -> dict[str, str]:
    """The generated development key kept at ``path`` (mode 0600), created on first use."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = {f"dev-{secrets.token_hex(4)}": secrets.token_urlsafe(64)}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".jwt-keys-")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(keys, file)
            # link() fails if the file exists: when two processes start at once, the first key wins.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the JWT key file {path}: {exc}") from None
    if not (isinstance(loaded, dict) and loaded and all(isinstance(v, str) and v for v in loaded.values())):
        raise ConfigurationError(
            f"{path} is not a JWT key file ({{kid: secret}}): delete it to generate a new key "
            "(everyone will have to log in again)"
        )
    return cast(dict[str, str], loaded)
