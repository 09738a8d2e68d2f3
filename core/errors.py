"""Lore's one error hierarchy. Services raise these; ``api/`` maps them to HTTP in one place.

::

    LoreError                      500 internal_error
    ├── InvalidInputError          422 invalid_input
    │   └── UnsupportedFormatError 415 unsupported_format
    ├── NotFoundError              404 not_found
    ├── ConflictError              409 conflict
    ├── ExtractionError            422 extraction_failed  (one document failed; never the job)
    ├── ConfigurationError         500 configuration_error
    └── BackendError               503 backend_unavailable (a store, database or LLM failed)
        └── StoreLockedError       503 store_locked (embedded store held by another process)
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


class NotFoundError(LoreError):
    code = "not_found"


class ConflictError(LoreError):
    code = "conflict"


class ExtractionError(LoreError):
    code = "extraction_failed"


class ConfigurationError(LoreError):
    code = "configuration_error"


class BackendError(LoreError):
    code = "backend_unavailable"


class StoreLockedError(BackendError):
    code = "store_locked"
