"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile).

These are CPU-bound (tens of milliseconds each): async callers run them in a thread.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# A parameter holder, no state: the default profile hashes with argon2id.
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` in PHC string format (salt and parameters included)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; false for a mismatch or a malformed hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's, so it should be replaced."""
    return _HASHER.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against when a user is unknown, so timing does not reveal which users exist."""
    return hash_password("unused: only here to spend the same time as a real check")
