"""Structured logs: one JSON object a line, each naming the request it belongs to.

Every line has ``ts``, ``level``, ``logger``, ``message`` and ``request_id``; fields passed with
``extra=`` (the access log's ``method``, ``path``, ``status``, ``duration_ms``...) join them.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from api.ops.request_id import current_request_id

# Attributes every LogRecord has; anything else on a record came in through `extra=`. uvicorn
# adds `color_message`, the message with terminal colour codes: noise in JSON.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str | int = "INFO") -> dict[str, Any]:
    """A ``dictConfig`` sending every logger, uvicorn's included, through :class:`JsonFormatter`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers would print plain text; its records go to the root instead.
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            # The access middleware writes the access line, with the request ID.
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


def configure_logging(level: str | int = "INFO") -> None:
    """Log JSON lines to stderr; run uvicorn with ``log_config=None`` so it keeps this set-up."""
    logging.config.dictConfig(logging_config(level))
