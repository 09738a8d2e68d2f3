"""Lore's one error hierarchy. Services raise these; ``api/`` maps them to HTTP in one place.

::

    LoreError                      500 internal_error
    ├── InvalidInputError          422 invalid_input
    │   └── UnsupportedFormatError 415 unsupported_format
    ├── AuthenticationError        401 unauthenticated (no, bad, expired or revoked credentials)
    ├── PermissionDeniedError      403 forbidden (authenticated, but the role does not allow it)
    ├── NotFoundError              404 not_found (also: exists, but the caller may not see it)
    ├── RateLimitedError           429 rate_limited (carries retry_after_s)
    ├── PayloadTooLargeError       413 payload_too_large
    ├── ConflictError              409 conflict
    ├── ExtractionError            422 extraction_failed  (one document failed; never the job)
    ├── ConfigurationError         500 configuration_error
    └── BackendError               503 backend_unavailable (a store, database or LLM failed)
        ├── UnavailableError       503 backend_unavailable (down for now: database restarting,
        │                              Redis gone; carries retry_after_s)
        ├── StoreLockedError       503 store_locked (embedded store held by another process)
        └── OverloadedError        503 overloaded (a bounded queue is full; carries retry_after_s)
"""

from __future__ import annotations


class LoreError(Exception):
    """Base of every error Lore raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(LoreError):
    code = "invalid_input"


class UnsupportedFormatError(InvalidInputError):
    code = "unsupported_format"


class AuthenticationError(LoreError):
    code = "unauthenticated"


class PermissionDeniedError(LoreError):
    code = "forbidden"


class NotFoundError(LoreError):
    code = "not_found"


class RateLimitedError(LoreError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, limit: int, remaining: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.remaining = remaining


class PayloadTooLargeError(LoreError):
    code = "payload_too_large"


class ConflictError(LoreError):
    code = "conflict"


class ExtractionError(LoreError):
    code = "extraction_failed"


class ConfigurationError(LoreError):
    code = "configuration_error"


class BackendError(LoreError):
    code = "backend_unavailable"


class UnavailableError(BackendError):
    """A dependency that should come back by itself is down; the client may retry after a while."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreLockedError(BackendError):
    code = "store_locked"


class OverloadedError(BackendError):
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
