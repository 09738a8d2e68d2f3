"""Identity services: users, login sessions and their tokens, API keys, corpus grants.

They know nothing of HTTP: the routes, the CLI and the OIDC login call them with a database
session first and keyword-only arguments, and they raise Lore errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from api.auth.principal import ROLES, Principal, Role
from api.auth.tokens import TokenClaims, TokenCodec
from core.db.models import ApiKeyRow, AuthSessionRow, CorpusGrantRow, CorpusRow, UserRow, utcnow
from core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$"
MIN_PASSWORD_CHARS = 8
API_KEY_RANDOM_BYTES = 32  # 43 URL-safe characters
API_KEY_DISPLAY_CHARS = 12
# last_used_at is written at most this often per key, so busy keys do not write on every request.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """The tokens of one login (or one refresh of it)."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    session_id: str


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: ``plaintext`` exists only here, the database keeps its hash."""

    row: ApiKeyRow
    plaintext: str


@dataclass(frozen=True, slots=True)
class ApiKeyListing:
    """A stored key and its owner's name."""

    row: ApiKeyRow
    username: str


def role_at_most(role: Role, ceiling: Role) -> Role:
    """``role``, lowered to ``ceiling`` when it ranks above it (reader < evaluator < admin)."""
    return role if ROLES.index(role) <= ROLES.index(ceiling) else ceiling


def _new_id() -> str:
    return str(uuid.uuid4())


# Users


async def create_user(session: AsyncSession, *, username: str, password: str | None, role: Role) -> UserRow:
    """Create a user; ``password=None`` makes a user who signs in only through OIDC."""
    _check_username(username)
    if password is not None and len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInputError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if await _find_user(session, username) is not None:
        raise ConflictError(f"user {username!r} already exists")
    password_hash = None if password is None else await asyncio.to_thread(hash_password, password)
    user = UserRow(id=_new_id(), username=username, password_hash=password_hash, role=role)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(f"user {username!r} already exists") from None
    return user


async def list_users(session: AsyncSession) -> list[UserRow]:
    """Every user, by name."""
    return list((await session.scalars(select(UserRow).order_by(UserRow.username))).all())


async def get_user_by_name(session: AsyncSession, *, username: str) -> UserRow:
    """The user called ``username``; :class:`NotFoundError` if there is none."""
    user = await _find_user(session, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


async def local_principal(session: AsyncSession, *, username: str, credential_id: str) -> Principal:
    """The caller a local process acts as without a credential (``lore mcp`` over stdio: whoever
    runs it can read the data dir anyway), limited to ``username``'s role and grants; a user who is
    disabled is refused like a revoked key."""
    user = await get_user_by_name(session, username=username)
    if user.disabled:
        raise AuthenticationError(f"user {user.username!r} is disabled")
    return Principal(
        user_id=user.id,
        username=user.username,
        role=_role(user.role),
        via="token",
        credential_id=credential_id,
    )


async def authenticate(session: AsyncSession, *, username: str, password: str) -> UserRow:
    """The user whose name and password these are; upgrades an outdated hash on the way."""
    user = await _find_user(session, username)
    stored = user.password_hash if user is not None else None
    # Unknown users and OIDC-only users cost one hash check too, so timing does not tell them apart.
    matches = await asyncio.to_thread(verify_password, stored or dummy_hash(), password)
    if user is None or stored is None or not matches:
        raise AuthenticationError("wrong username or password")
    if user.disabled:
        raise AuthenticationError(f"user {username!r} is disabled")
    if needs_rehash(stored):
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await session.commit()
    return user


async def get_or_create_oidc_user(
    session: AsyncSession, *, issuer: str, subject: str, preferred_username: str | None, default_role: Role
) -> UserRow:
    """The user behind an OIDC identity, created with ``default_role`` at their first login.

    The username is the provider's preferred one, made unique with a numeric suffix when taken.
    """
    existing = await _find_oidc_user(session, issuer, subject)
    if existing is not None:
        return existing
    base = _username_from(preferred_username or f"user-{subject}")
    taken = set(
        (
            await session.scalars(
                select(UserRow.username).where(UserRow.username.startswith(base, autoescape=True))
            )
        ).all()
    )
    username = next(
        name for name in (base, *(f"{base}-{n}" for n in range(2, len(taken) + 3))) if name not in taken
    )
    user = UserRow(
        id=_new_id(),
        username=username,
        password_hash=None,
        role=default_role,
        oidc_issuer=issuer,
        oidc_subject=subject,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Usually the same identity's first login twice at once: the other request created the user.
        await session.rollback()
        existing = await _find_oidc_user(session, issuer, subject)
        if existing is None:
            raise ConflictError(f"username {username!r} was taken meanwhile: sign in again") from None
        return existing
    return user


async def _find_user(session: AsyncSession, username: str) -> UserRow | None:
    return await session.scalar(select(UserRow).where(UserRow.username == username))


async def _find_oidc_user(session: AsyncSession, issuer: str, subject: str) -> UserRow | None:
    return await session.scalar(
        select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject)
    )


def _check_username(username: str) -> None:
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInputError(
            f"invalid username {username!r}: up to 200 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )


def _username_from(preferred: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "-", preferred).lstrip("._@+-")[:180]
    return cleaned or "user"


# Login sessions and their tokens


async def login(session: AsyncSession, *, codec: TokenCodec, user: UserRow) -> TokenPair:
    """Open an auth session for an authenticated user and issue its first tokens."""
    if user.disabled:
        raise AuthenticationError(f"user {user.username!r} is disabled")
    refresh_id = _new_id()
    row = AuthSessionRow(
        id=_new_id(),
        user_id=user.id,
        current_refresh_id=refresh_id,
        expires_at=utcnow() + timedelta(seconds=codec.ttl_s["refresh"]),
    )
    session.add(row)
    await session.commit()
    return _token_pair(codec, user, session_id=row.id, refresh_id=refresh_id)


async def refresh(session: AsyncSession, *, codec: TokenCodec, refresh_token: str) -> TokenPair:
    """New tokens for a refresh token, which is spent; presenting a spent one revokes its session.

    A refresh token used twice means two parties hold it, so neither may go on (theft detection).
    """
    claims = codec.verify(refresh_token, kind="refresh")
    auth_session, user = await _open_session(session, claims)
    if auth_session.expires_at <= utcnow():
        raise AuthenticationError("the session has expired: log in again")
    new_refresh_id = _new_id()
    # Compare-and-set, so of two concurrent uses of one refresh token only one can win.
    rotated = await session.scalar(
        update(AuthSessionRow)
        .where(
            AuthSessionRow.id == auth_session.id,
            AuthSessionRow.current_refresh_id == claims.token_id,
            AuthSessionRow.revoked_at.is_(None),
        )
        .values(
            current_refresh_id=new_refresh_id,
            expires_at=utcnow() + timedelta(seconds=codec.ttl_s["refresh"]),
        )
        .returning(AuthSessionRow.id)
    )
    if rotated is None:
        await _revoke_session(session, auth_session.id)
        await session.commit()
        raise AuthenticationError("the refresh token was already used: the session is revoked, log in again")
    await session.commit()
    return _token_pair(codec, user, session_id=auth_session.id, refresh_id=new_refresh_id)


async def logout(session: AsyncSession, *, session_id: str) -> None:
    """Revoke an auth session: its access and refresh tokens stop working at once."""
    await _revoke_session(session, session_id)
    await session.commit()


async def principal_for_access_token(session: AsyncSession, *, codec: TokenCodec, token: str) -> Principal:
    """The caller behind a JWT access token whose session is still open and whose user is enabled."""
    return await _session_principal(session, codec.verify(token, kind="access"))


async def principal_for_ticket(
    session: AsyncSession, *, codec: TokenCodec, ticket: str, path: str
) -> Principal:
    """The caller behind a ticket for ``path`` whose session is still open (docs/auth.md, Tickets)."""
    claims = codec.verify(ticket, kind="ticket")
    if claims.path != path:
        raise AuthenticationError("the ticket is for another URL")
    return await _session_principal(session, claims)


async def _session_principal(session: AsyncSession, claims: TokenClaims) -> Principal:
    auth_session, user = await _open_session(session, claims)
    # The user's role now, not at login: a demotion applies to tokens already issued.
    return Principal(
        user_id=user.id,
        username=user.username,
        role=_role(user.role),
        via="token",
        credential_id=auth_session.id,
    )


def issue_ticket(codec: TokenCodec, principal: Principal, path: str) -> str:
    """A ticket opening ``path`` for a minute, as the caller (whose session it stays bound to)."""
    return codec.issue(
        "ticket",
        user_id=principal.user_id,
        session_id=principal.credential_id,
        role=principal.role,
        token_id=_new_id(),
        path=path,
    )


async def _open_session(session: AsyncSession, claims: TokenClaims) -> tuple[AuthSessionRow, UserRow]:
    """The token's auth session and user, in one indexed read; refused when revoked or disabled."""
    found = (
        await session.execute(
            select(AuthSessionRow, UserRow)
            .join(UserRow, UserRow.id == AuthSessionRow.user_id)
            .where(AuthSessionRow.id == claims.session_id)
        )
    ).one_or_none()
    if found is None:
        raise AuthenticationError("the token's session does not exist")
    auth_session, user = found
    if auth_session.user_id != claims.user_id:
        raise AuthenticationError("the token's session belongs to someone else")
    if auth_session.revoked_at is not None:
        raise AuthenticationError("the session has been revoked: log in again")
    if user.disabled:
        raise AuthenticationError(f"user {user.username!r} is disabled")
    return auth_session, user


async def _revoke_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(
        update(AuthSessionRow)
        .where(AuthSessionRow.id == session_id, AuthSessionRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _token_pair(codec: TokenCodec, user: UserRow, *, session_id: str, refresh_id: str) -> TokenPair:
    role = _role(user.role)
    return TokenPair(
        access_token=codec.issue(
            "access", user_id=user.id, session_id=session_id, role=role, token_id=_new_id()
        ),
        refresh_token=codec.issue(
            "refresh", user_id=user.id, session_id=session_id, role=role, token_id=refresh_id
        ),
        expires_in=codec.ttl_s["access"],
        session_id=session_id,
    )


def _role(value: str) -> Role:
    if value not in ROLES:
        raise AuthenticationError(f"the account has an unknown role {value!r}")
    return value


# API keys


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest a key is stored and looked up as."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(
    session: AsyncSession, *, user: UserRow, name: str, role: Role | None = None, prefix: str
) -> NewApiKey:
    """Create a key for ``user`` with ``role`` (default and ceiling: theirs); the plaintext is shown once."""
    owner_role = _role(user.role)
    key_role = role or owner_role
    if role_at_most(key_role, owner_role) != key_role:
        raise InvalidInputError(f"a key of {user.username!r} ({owner_role}) cannot have role {key_role}")
    plaintext = prefix + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    row = ApiKeyRow(
        id=_new_id(),
        user_id=user.id,
        name=name,
        display_prefix=plaintext[:API_KEY_DISPLAY_CHARS],
        key_hash=hash_api_key(plaintext),
        role=key_role,
    )
    session.add(row)
    await session.commit()
    return NewApiKey(row=row, plaintext=plaintext)


async def verify_api_key(session: AsyncSession, *, key: str) -> Principal:
    """The caller behind an API key that is not revoked and whose owner is enabled."""
    # Looked up by hash: comparing digests leaks nothing useful about the key through timing.
    found = (
        await session.execute(
            select(ApiKeyRow, UserRow)
            .join(UserRow, UserRow.id == ApiKeyRow.user_id)
            .where(ApiKeyRow.key_hash == hash_api_key(key))
        )
    ).one_or_none()
    if found is None:
        raise AuthenticationError("unknown API key")
    row, user = found
    if row.revoked_at is not None:
        raise AuthenticationError(f"the API key {row.display_prefix}... has been revoked")
    if user.disabled:
        raise AuthenticationError(f"user {user.username!r} is disabled")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= API_KEY_TOUCH_INTERVAL:
        row.last_used_at = now
        await session.commit()
    # The owner's role caps the key's, so demoting a user demotes their keys too.
    return Principal(
        user_id=user.id,
        username=user.username,
        role=role_at_most(_role(row.role), _role(user.role)),
        via="api_key",
        credential_id=row.id,
    )


async def revoke_api_key(session: AsyncSession, *, key_id: str) -> ApiKeyRow:
    """Revoke a key (again is fine); :class:`NotFoundError` if there is no such key."""
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFoundError(f"no API key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.commit()
    return row


async def list_api_keys(session: AsyncSession, *, username: str | None = None) -> list[ApiKeyListing]:
    """Keys (of one user, or of all), oldest first, with their owners' names."""
    query = select(ApiKeyRow, UserRow.username).join(UserRow, UserRow.id == ApiKeyRow.user_id)
    if username is not None:
        query = query.where(UserRow.id == (await get_user_by_name(session, username=username)).id)
    rows = await session.execute(query.order_by(ApiKeyRow.created_at, ApiKeyRow.id))
    return [ApiKeyListing(row=row, username=name) for row, name in rows]


# Corpus grants


async def grant(session: AsyncSession, *, username: str, corpus: str) -> None:
    """Let a user see a corpus (granting twice is fine)."""
    user, corpus_row = await _user_and_corpus(session, username, corpus)
    if await session.get(CorpusGrantRow, (user.id, corpus_row.id)) is None:
        session.add(CorpusGrantRow(user_id=user.id, corpus_id=corpus_row.id))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # granted by a concurrent request: the outcome is the same


async def revoke_grant(session: AsyncSession, *, username: str, corpus: str) -> None:
    """Take a corpus away from a user (revoking a grant that does not exist is fine)."""
    user, corpus_row = await _user_and_corpus(session, username, corpus)
    await session.execute(
        delete(CorpusGrantRow).where(
            CorpusGrantRow.user_id == user.id, CorpusGrantRow.corpus_id == corpus_row.id
        )
    )
    await session.commit()


async def granted_corpora(session: AsyncSession, *, user_id: str) -> set[str]:
    """Names of the corpora granted to a user."""
    names = await session.scalars(
        select(CorpusRow.name)
        .join(CorpusGrantRow, CorpusGrantRow.corpus_id == CorpusRow.id)
        .where(CorpusGrantRow.user_id == user_id)
    )
    return set(names.all())


async def _user_and_corpus(session: AsyncSession, username: str, corpus: str) -> tuple[UserRow, CorpusRow]:
    user = await get_user_by_name(session, username=username)
    corpus_row = await session.scalar(select(CorpusRow).where(CorpusRow.name == corpus))
    if corpus_row is None:
        raise NotFoundError(f"no corpus {corpus!r}")
    return user, corpus_row
