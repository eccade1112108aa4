"""Test helpers shipped with the package: polling with a deadline, and the process helpers."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

from .process import ManagedProcess, WaitTimeout, free_port, process_alive

__all__ = [
    "ManagedProcess",
    "WaitTimeout",
    "async_wait_until",
    "free_port",
    "process_alive",
    "wait_until",
]

T = TypeVar("T")


def _timeout_message(message: str, timeout: float, last: object) -> str:
    what = message or "condition"
    return f"{what}: not met within {timeout} s (last result: {last!r})"


# A bool predicate gets its own overload: solving ``T | bool | None`` for it gives
# T = Never, and mypy would then treat the code after the call as unreachable.
@overload
def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> bool: ...


@overload
def wait_until(
    predicate: Callable[[], T | bool | None],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> T: ...


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.1,
    message: str = "",
) -> object:
    """Call ``predicate`` until it returns something other than None or False; return that.

    Only None and False mean "not yet", so a predicate may return 0 or "" as an answer.
    Exceptions from the predicate propagate. Raises WaitTimeout at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result is not None and result is not False:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(_timeout_message(message, timeout, result))
        time.sleep(min(interval, remaining))


@overload
async def async_wait_until(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> bool: ...


@overload
async def async_wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> bool: ...


@overload
async def async_wait_until(
    predicate: Callable[[], Awaitable[T | bool | None]],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> T: ...


@overload
async def async_wait_until(
    predicate: Callable[[], T | bool | None],
    timeout: float,
    interval: float = ...,
    message: str = ...,
) -> T: ...


async def async_wait_until(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.1,
    message: str = "",
) -> object:
    """The asyncio twin of :func:`wait_until`; ``predicate`` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result is not None and result is not False:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(_timeout_message(message, timeout, result))
        await asyncio.sleep(min(interval, remaining))
