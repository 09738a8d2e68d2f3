"""Recently verified credentials and read scopes, kept for a few seconds per API process.

Every request otherwise pays a database read to verify its API key or session and another for
the caller's corpus grants: at one client that was about a fifth of a search's time. Entries
live ``auth.credential_cache_s`` seconds (0: no cache). A change made through this process (a
key revoked, a grant added or removed, a logout) clears the cache at once; one made elsewhere
(another API process, the CLI) takes effect here within that many seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from starlette.requests import HTTPConnection

from api.auth.principal import Principal

V = TypeVar("V")

# Entries per map at most; the least recently used go first.
MAX_ENTRIES = 10_000


class _TTLMap(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, V | None]:
        found = self._entries.get(key)
        if found is None:
            return False, None
        expires, value = found
        if time.monotonic() >= expires:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: str, value: V) -> None:
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class CredentialCache:
    """Principals by credential (held as a SHA-256 digest, never the secret) and read scopes by user."""

    def __init__(self, ttl_s: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.enabled = ttl_s > 0
        self._principals: _TTLMap[Principal] = _TTLMap(ttl_s, max_entries)
        self._scopes: _TTLMap[frozenset[str] | None] = _TTLMap(ttl_s, max_entries)

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def principal(self, token: str) -> Principal | None:
        if not self.enabled:
            return None
        return self._principals.get(self._digest(token))[1]

    def remember_principal(self, token: str, principal: Principal) -> None:
        if self.enabled:
            self._principals.put(self._digest(token), principal)

    def scope(self, user_id: str) -> tuple[bool, frozenset[str] | None]:
        """(found, scope): a user's cached read scope (None: every corpus)."""
        if not self.enabled:
            return False, None
        return self._scopes.get(user_id)

    def remember_scope(self, user_id: str, scope: frozenset[str] | None) -> None:
        if self.enabled:
            self._scopes.put(user_id, scope)

    def clear(self) -> None:
        """Forget everything: called after any change to keys, sessions, users or grants."""
        self._principals.clear()
        self._scopes.clear()


def get_credential_cache(connection: HTTPConnection) -> CredentialCache | None:
    """The app's credential cache (None outside an app that made one, e.g. a bare test app)."""
    cache: CredentialCache | None = getattr(connection.app.state, "credentials", None)
    return cache


def forget_credentials(cache: CredentialCache | None) -> None:
    """Clear ``cache`` (when there is one) after a change to keys, sessions, users or grants."""
    if cache is not None:
        cache.clear()
