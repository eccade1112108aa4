"""How commands end: one line on stderr and an exit status, never a stack trace."""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import NoReturn

from app.exceptions import TxstreamError

__all__ = ["UsageError", "exit_with", "fail", "note"]


class UsageError(ValueError):
    """A command-line argument is wrong (exit status 2, one line, no stack trace)."""


def fail(command: str, message: str, code: int) -> NoReturn:
    """Print ``txstream COMMAND: message`` on stderr and exit with ``code``."""
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


async def exit_with(command: str, run: Awaitable[int]) -> None:
    """Await a command's work; a usage error exits 2, a failure 1, a nonzero result with it."""
    try:
        code = await run
    except UsageError as exc:
        fail(command, str(exc), 2)
    except (TxstreamError, LookupError) as exc:
        fail(command, str(exc), 1)
    if code:
        raise SystemExit(code)


def note(command: str, message: str) -> None:
    """Print ``txstream COMMAND: message`` on stderr (progress and summaries)."""
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)
