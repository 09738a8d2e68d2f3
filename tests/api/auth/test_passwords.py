"""argon2id password hashing."""

from __future__ import annotations

from argon2 import PasswordHasher

from api.auth.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_salted_argon2id_and_verifies_only_the_right_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert verify_password(first, "correct horse")
    assert not verify_password(first, "correct horsE")


def test_malformed_hash_verifies_nothing() -> None:
    assert not verify_password("not-a-hash", "anything")


def test_hash_with_outdated_parameters_needs_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("pw"))
