"""Tickets: a minute-long credential for one URL, in its query (``?ticket=``).

A page holding its access token in memory can send it as a header, but a frame, a download or a
new tab cannot. For the few GET routes whose answer a browser shows itself (eval reports, the
comparison report, a document's original), the page asks ``POST /v1/auth/tickets`` for a ticket
bound to that path and its session, and opens the URL with it. A ticket works only on that path,
only for GET, for at most a minute, and never past its session's end; it grants nothing the
session could not do.
"""

from __future__ import annotations

import re

TICKET_PARAM = "ticket"

# The routes a ticket can open (their paths, whole).
TICKET_PATHS = (
    re.compile(r"/v1/evals/runs/[^/]+/report"),
    re.compile(r"/v1/evals/compare/report"),
    re.compile(r"/v1/documents/[^/]+/file"),
)


def opens_with_ticket(path: str) -> bool:
    """Whether a ticket may open ``path``."""
    return any(pattern.fullmatch(path) for pattern in TICKET_PATHS)
