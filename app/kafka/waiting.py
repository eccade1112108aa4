"""Waiting for a broker: start a client, retrying for a bounded time, then one clear error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from app.durations import format_duration
from app.exceptions import BrokerError

__all__ = ["RETRY_PAUSE", "unreachable", "until_reachable"]

T = TypeVar("T")

#: Seconds between two attempts.
RETRY_PAUSE = 1.0


def unreachable(bootstrap: str, wait_s: float,
                error: BaseException | str | None) -> BrokerError:
    """The error of a broker that did not answer for ``wait_s`` seconds."""
    cause = f" (last error: {error})" if error is not None else ""
    return BrokerError(
        f"the broker at {bootstrap} did not answer for {format_duration(int(wait_s * 1000))} "
        f"(TXSTREAM_BROKER_WAIT){cause}; check TXSTREAM_BROKER and that the broker runs")


async def until_reachable(bootstrap: str, wait_s: float,
                          attempt: Callable[[], Awaitable[T]]) -> T:
    """``await attempt()`` until it succeeds; BrokerError after ``wait_s`` seconds of failures.

    ``attempt`` must clean up after itself when it fails (stop the client it started).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await attempt()
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() + RETRY_PAUSE > deadline:
                raise unreachable(bootstrap, wait_s, exc) from None
        await asyncio.sleep(RETRY_PAUSE)
