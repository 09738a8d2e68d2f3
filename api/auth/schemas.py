"""Request and response schemas of the identity routes: tokens, users, API keys, grants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

from pydantic import BaseModel, Field, SecretStr

from api.auth.principal import Principal, Role
from api.auth.service import USERNAME_PATTERN, ApiKeyListing, NewApiKey, TokenPair
from api.corpora.schemas import CorpusRef
from core.db.models import UserRow

Username = Annotated[str, Field(pattern=USERNAME_PATTERN, max_length=200, description="Unique login name.")]


class TokenResponse(BaseModel):
    """An OAuth2 token response (RFC 6749 section 5.1) with Lore's refresh token."""

    access_token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    refresh_token: str = Field(description="Trade at /v1/auth/refresh for new tokens; each works once.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")

    @classmethod
    def from_domain(cls, pair: TokenPair) -> TokenResponse:
        return cls(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, description="The refresh token of the latest login or refresh.")


class PrincipalPublic(BaseModel):
    """Who the caller is, and through which credential."""

    user_id: str
    username: str
    role: Role
    via: Literal["token", "api_key"]

    @classmethod
    def from_domain(cls, principal: Principal) -> PrincipalPublic:
        return cls(
            user_id=principal.user_id, username=principal.username, role=principal.role, via=principal.via
        )


class UserBase(BaseModel):
    username: Username
    role: Role = Field(description="reader: asks questions; evaluator: also runs evals; admin: everything.")


class UserCreate(UserBase):
    password: SecretStr | None = Field(
        default=None, description="At least 8 characters; null for a user who signs in only through OIDC."
    )


class UserPublic(UserBase):
    id: str
    disabled: bool
    has_password: bool = Field(description="False for users who sign in only through OIDC.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: UserRow) -> UserPublic:
        return cls(
            id=row.id,
            username=row.username,
            role=cast(Role, row.role),
            disabled=row.disabled,
            has_password=row.password_hash is not None,
            created_at=row.created_at,
        )


class ApiKeyBase(BaseModel):
    name: str = Field(
        min_length=1, max_length=200, description="What the key is for, e.g. the service using it."
    )
    role: Role | None = Field(
        default=None, description="The key's role; default and ceiling: its owner's role."
    )


class ApiKeyCreate(ApiKeyBase):
    username: str = Field(description="The user the key acts for.")


class ApiKeyPublic(ApiKeyBase):
    id: str
    username: str
    role: Role
    display_prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last use, to the minute; null if never used.")
    revoked_at: datetime | None

    @classmethod
    def from_listing(cls, listing: ApiKeyListing) -> ApiKeyPublic:
        row = listing.row
        return cls(
            id=row.id,
            name=row.name,
            username=listing.username,
            role=cast(Role, row.role),
            display_prefix=row.display_prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. Shown this once only: Lore keeps just its hash.")

    @classmethod
    def from_new(cls, new: NewApiKey, *, username: str) -> ApiKeyCreated:
        public = ApiKeyPublic.from_listing(ApiKeyListing(row=new.row, username=username))
        return cls(**public.model_dump(), key=new.plaintext)


class Grant(BaseModel):
    """A user's permission to read a corpus (admins read every corpus without one)."""

    username: str = Field(description="The user who may read the corpus.")
    corpus: CorpusRef = Field(description="The corpus's name.")
