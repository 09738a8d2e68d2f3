"""Who is calling: the authenticated principal every guarded route receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["reader", "evaluator", "admin"]
ROLES: tuple[Role, ...] = ("reader", "evaluator", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user through a JWT access token, or a service through an API key.

    ``rate_key`` identifies the caller for rate limits: the user for tokens, the key for API keys,
    so each key has its own bucket.
    """

    user_id: str
    username: str
    role: Role
    via: Literal["token", "api_key"]
    credential_id: str  # the auth session ID (token) or the API key ID

    @property
    def rate_key(self) -> str:
        return f"key:{self.credential_id}" if self.via == "api_key" else f"user:{self.user_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
