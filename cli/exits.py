"""How every `lore` command ends: its exit status, and an error as one line on stderr.

Exit statuses: 0 done; 1 done, but something it reports failed (a document, a gate, a check);
2 nothing done: a usage, configuration or start-up error (a database or Redis that does not
answer, a database not migrated), told in one line naming the setting and what to do; 130
interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from core.errors import LoreError

FAILED = 1
USAGE = 2
INTERRUPTED = 130

err = Console(stderr=True)
T = TypeVar("T")


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line however narrow the terminal (scripts grep it)."""
    err.print(f"[bold red]error[/]: {escape(message)}", soft_wrap=True, highlight=False)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as the command's error; raise the result to exit with status 2."""
    print_error(message)
    return typer.Exit(USAGE)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a Lore error ends it with one line and status 2."""
    try:
        return asyncio.run(coro)
    except LoreError as exc:
        raise fail(exc.message) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(INTERRUPTED) from None
