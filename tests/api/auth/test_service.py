"""Identity services on SQLite and PostgreSQL: users, sessions and their tokens, API keys, grants."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import service
from api.auth.tokens import TokenCodec
from core.db.models import ApiKeyRow, AuthSessionRow, UserRow, utcnow
from core.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError

Sessions = async_sessionmaker[AsyncSession]
PREFIX = "lore_"


async def make_user(sessions: Sessions, name: str = "alice", role: service.Role = "reader") -> UserRow:
    async with sessions() as session:
        return await service.create_user(session, username=name, password="a long password", role=role)


async def login(sessions: Sessions, codec: TokenCodec, name: str = "alice") -> service.TokenPair:
    async with sessions() as session:
        user = await service.authenticate(session, username=name, password="a long password")
        return await service.login(session, codec=codec, user=user)


async def principal(sessions: Sessions, codec: TokenCodec, token: str) -> service.Principal:
    async with sessions() as session:
        return await service.principal_for_access_token(session, codec=codec, token=token)


async def refresh(sessions: Sessions, codec: TokenCodec, token: str) -> service.TokenPair:
    async with sessions() as session:
        return await service.refresh(session, codec=codec, refresh_token=token)


async def test_login_gives_tokens_whose_principal_is_the_user(sessions: Sessions, codec: TokenCodec) -> None:
    user = await make_user(sessions, role="evaluator")
    pair = await login(sessions, codec)
    caller = await principal(sessions, codec, pair.access_token)
    assert (caller.user_id, caller.username, caller.role, caller.via) == (
        user.id,
        "alice",
        "evaluator",
        "token",
    )
    assert caller.credential_id == pair.session_id
    assert pair.expires_in == 900


async def test_wrong_password_unknown_user_and_password_less_user_fail_alike(sessions: Sessions) -> None:
    await make_user(sessions)
    async with sessions() as session:
        await service.create_user(session, username="oidc-only", password=None, role="reader")
        for name, password in [("alice", "wrong password"), ("nobody", "a long password"), ("oidc-only", "")]:
            with pytest.raises(AuthenticationError, match=r"^wrong username or password$"):
                await service.authenticate(session, username=name, password=password)


async def test_disabled_user_cannot_log_in_and_their_tokens_stop(
    sessions: Sessions, codec: TokenCodec
) -> None:
    await make_user(sessions)
    pair = await login(sessions, codec)
    async with sessions() as session:
        await session.execute(update(UserRow).values(disabled=True))
        await session.commit()
        with pytest.raises(AuthenticationError, match="disabled"):
            await service.authenticate(session, username="alice", password="a long password")
    with pytest.raises(AuthenticationError, match="disabled"):
        await principal(sessions, codec, pair.access_token)
    with pytest.raises(AuthenticationError, match="disabled"):
        await refresh(sessions, codec, pair.refresh_token)


async def test_outdated_password_hash_is_upgraded_at_login(sessions: Sessions) -> None:
    user = await make_user(sessions)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("a long password")
    async with sessions() as session:
        await session.execute(update(UserRow).where(UserRow.id == user.id).values(password_hash=weak))
        await session.commit()
        await service.authenticate(session, username="alice", password="a long password")
    async with sessions() as session:
        stored = await session.scalar(select(UserRow.password_hash).where(UserRow.id == user.id))
    assert stored is not None and stored != weak and not service.needs_rehash(stored)


async def test_create_user_refuses_duplicates_bad_names_and_short_passwords(sessions: Sessions) -> None:
    await make_user(sessions)
    async with sessions() as session:
        with pytest.raises(ConflictError):
            await service.create_user(session, username="alice", password=None, role="admin")
        with pytest.raises(InvalidInputError, match="username"):
            await service.create_user(session, username="al ice", password=None, role="admin")
        with pytest.raises(InvalidInputError, match="8 characters"):
            await service.create_user(session, username="bob", password="short", role="admin")
        assert [u.username for u in await service.list_users(session)] == ["alice"]


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    sessions: Sessions, codec: TokenCodec
) -> None:
    await make_user(sessions)
    first = await login(sessions, codec)
    second = await refresh(sessions, codec, first.refresh_token)
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    assert (await principal(sessions, codec, second.access_token)).username == "alice"

    # The spent token comes back: someone holds a copy, so the whole session ends.
    with pytest.raises(AuthenticationError, match="already used"):
        await refresh(sessions, codec, first.refresh_token)
    with pytest.raises(AuthenticationError, match="revoked"):
        await refresh(sessions, codec, second.refresh_token)
    with pytest.raises(AuthenticationError, match="revoked"):
        await principal(sessions, codec, second.access_token)


async def test_concurrent_uses_of_one_refresh_token_let_at_most_one_win(
    sessions: Sessions, codec: TokenCodec
) -> None:
    await make_user(sessions)
    pair = await login(sessions, codec)
    results = await asyncio.gather(
        refresh(sessions, codec, pair.refresh_token),
        refresh(sessions, codec, pair.refresh_token),
        return_exceptions=True,
    )
    assert sum(isinstance(r, service.TokenPair) for r in results) == 1, results
    assert sum(isinstance(r, AuthenticationError) for r in results) == 1, results
    async with sessions() as session:
        row = await session.get(AuthSessionRow, pair.session_id)
    assert row is not None and row.revoked_at is not None


async def test_logout_stops_access_and_refresh_tokens(sessions: Sessions, codec: TokenCodec) -> None:
    await make_user(sessions)
    pair, other = await login(sessions, codec), await login(sessions, codec)
    async with sessions() as session:
        await service.logout(session, session_id=pair.session_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await principal(sessions, codec, pair.access_token)
    with pytest.raises(AuthenticationError, match="revoked"):
        await refresh(sessions, codec, pair.refresh_token)
    # Other logins of the same user go on.
    assert (await principal(sessions, codec, other.access_token)).username == "alice"


async def test_expired_session_cannot_refresh(sessions: Sessions, codec: TokenCodec) -> None:
    await make_user(sessions)
    pair = await login(sessions, codec)
    async with sessions() as session:
        await session.execute(update(AuthSessionRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    with pytest.raises(AuthenticationError, match="expired"):
        await refresh(sessions, codec, pair.refresh_token)


async def test_rotated_signing_key_keeps_sessions_until_the_old_key_is_removed(
    sessions: Sessions, codec: TokenCodec, jwt_keys: dict[str, str]
) -> None:
    await make_user(sessions)
    pair = await login(sessions, codec)
    rotated = TokenCodec(jwt_keys, signing_kid="k2", issuer="lore", access_ttl_s=900, refresh_ttl_s=3600)
    assert (await principal(sessions, rotated, pair.access_token)).username == "alice"
    renewed = await refresh(sessions, rotated, pair.refresh_token)
    retired = TokenCodec({"k2": jwt_keys["k2"]}, issuer="lore", access_ttl_s=900, refresh_ttl_s=3600)
    assert (await principal(sessions, retired, renewed.access_token)).username == "alice"
    with pytest.raises(AuthenticationError, match="no longer"):
        await principal(sessions, retired, pair.access_token)


async def test_api_key_is_stored_only_as_its_hash_and_verifies(sessions: Sessions) -> None:
    user = await make_user(sessions, role="evaluator")
    async with sessions() as session:
        new = await service.create_api_key(session, user=user, name="ci", prefix=PREFIX)
    key = new.plaintext
    assert key.startswith(PREFIX) and len(key) == len(PREFIX) + 43
    async with sessions() as session:
        row = await session.get(ApiKeyRow, new.row.id)
        assert row is not None
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.display_prefix == key[:12]
        assert key not in {row.name, row.display_prefix, row.key_hash}
        caller = await service.verify_api_key(session, key=key)
    assert (caller.username, caller.role, caller.via, caller.credential_id) == (
        "alice",
        "evaluator",
        "api_key",
        row.id,
    )
    assert caller.rate_key == f"key:{row.id}"


async def test_unknown_and_revoked_api_keys_are_refused(sessions: Sessions) -> None:
    user = await make_user(sessions)
    async with sessions() as session:
        new = await service.create_api_key(session, user=user, name="ci", prefix=PREFIX)
        with pytest.raises(AuthenticationError, match="unknown"):
            await service.verify_api_key(session, key=new.plaintext + "x")
        await service.revoke_api_key(session, key_id=new.row.id)
        with pytest.raises(AuthenticationError, match="revoked"):
            await service.verify_api_key(session, key=new.plaintext)
        with pytest.raises(NotFoundError):
            await service.revoke_api_key(session, key_id="no-such-key")


async def test_api_key_role_never_exceeds_its_owner(sessions: Sessions) -> None:
    owner = await make_user(sessions, role="evaluator")
    async with sessions() as session:
        with pytest.raises(InvalidInputError, match="cannot have role admin"):
            await service.create_api_key(session, user=owner, name="ci", role="admin", prefix=PREFIX)
        reader_key = await service.create_api_key(
            session, user=owner, name="ro", role="reader", prefix=PREFIX
        )
        full_key = await service.create_api_key(session, user=owner, name="ev", prefix=PREFIX)
        assert (await service.verify_api_key(session, key=reader_key.plaintext)).role == "reader"
        # Demoting the owner demotes the keys they made.
        await session.execute(update(UserRow).values(role="reader"))
        await session.commit()
        assert (await service.verify_api_key(session, key=full_key.plaintext)).role == "reader"


async def test_api_key_last_use_is_written_at_most_once_a_minute(sessions: Sessions) -> None:
    user = await make_user(sessions)
    async with sessions() as session:
        new = await service.create_api_key(session, user=user, name="ci", prefix=PREFIX)
        await service.verify_api_key(session, key=new.plaintext)
    async with sessions() as session:
        first = await session.scalar(select(ApiKeyRow.last_used_at))
        await service.verify_api_key(session, key=new.plaintext)
    async with sessions() as session:
        assert await session.scalar(select(ApiKeyRow.last_used_at)) == first
        earlier = utcnow() - timedelta(minutes=2)
        await session.execute(update(ApiKeyRow).values(last_used_at=earlier))
        await session.commit()
        await service.verify_api_key(session, key=new.plaintext)
    async with sessions() as session:
        latest = await session.scalar(select(ApiKeyRow.last_used_at))
    assert first is not None and latest is not None and latest > earlier.replace(tzinfo=latest.tzinfo)


async def test_api_keys_are_listed_with_their_owners(sessions: Sessions) -> None:
    alice, bob = await make_user(sessions, "alice"), await make_user(sessions, "bob")
    async with sessions() as session:
        await service.create_api_key(session, user=alice, name="a", prefix=PREFIX)
        await service.create_api_key(session, user=bob, name="b", prefix=PREFIX)
        assert [(k.username, k.row.name) for k in await service.list_api_keys(session)] == [
            ("alice", "a"),
            ("bob", "b"),
        ]
        assert [k.row.name for k in await service.list_api_keys(session, username="bob")] == ["b"]
        with pytest.raises(NotFoundError):
            await service.list_api_keys(session, username="carol")


async def test_grants_give_and_take_corpora_by_name(sessions: Sessions) -> None:
    user = await make_user(sessions)
    async with sessions() as session:
        await service.grant(session, username="alice", corpus="handbook")
        await service.grant(session, username="alice", corpus="handbook")
        await service.grant(session, username="alice", corpus="secrets")
        assert await service.granted_corpora(session, user_id=user.id) == {"handbook", "secrets"}
        await service.revoke_grant(session, username="alice", corpus="secrets")
        assert await service.granted_corpora(session, user_id=user.id) == {"handbook"}
        with pytest.raises(NotFoundError, match="no corpus 'missing'"):
            await service.grant(session, username="alice", corpus="missing")
        with pytest.raises(NotFoundError, match="no user 'carol'"):
            await service.revoke_grant(session, username="carol", corpus="handbook")


async def test_oidc_identity_maps_to_one_user_with_a_unique_name(sessions: Sessions) -> None:
    await make_user(sessions, "alice")
    async with sessions() as session:
        first = await service.get_or_create_oidc_user(
            session, issuer="https://idp", subject="sub-1", preferred_username="alice", default_role="reader"
        )
        again = await service.get_or_create_oidc_user(
            session, issuer="https://idp", subject="sub-1", preferred_username="renamed", default_role="admin"
        )
        other = await service.get_or_create_oidc_user(
            session, issuer="https://idp", subject="sub-2", preferred_username="alice", default_role="reader"
        )
        odd = await service.get_or_create_oidc_user(
            session,
            issuer="https://idp",
            subject="sub-3",
            preferred_username=" Zoë Q. ",
            default_role="reader",
        )
    assert first.id == again.id and again.role == "reader"
    assert (first.username, other.username) == ("alice-2", "alice-3")
    assert first.password_hash is None and first.oidc_subject == "sub-1"
    assert odd.username == "Zo--Q.-"
