"""How commands end: one line on stderr and an exit status, never a stack trace."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

from aiokafka.errors import KafkaError

from app.exceptions import BrokerError, TxstreamError
from app.kafka.connect import wait_for_brokers
from app.kafka.security import KafkaConnection

__all__ = ["UsageError", "exit_with", "fail", "note"]


class UsageError(ValueError):
    """A command-line argument is wrong (exit status 2, one line, no stack trace)."""


def fail(command: str, message: str, code: int) -> NoReturn:
    """Print ``txstream COMMAND: message`` on stderr and exit with ``code``."""
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


async def exit_with(command: str, run: Coroutine[Any, Any, int],
                    kafka: KafkaConnection | None = None) -> None:
    """Await a command's work; a usage error exits 2, a failure 1, a nonzero result with it.

    With ``kafka``, the brokers are checked first (:func:`wait_for_brokers`: bounded by
    TXSTREAM_KAFKA_CONNECT_TIMEOUT, with the reason when they cannot be used), since
    aiokafka's clients would retry some failures for their whole request timeout; a Kafka
    client's error later is explained the same way when the brokers are its cause.
    """
    try:
        if kafka is not None:
            try:
                await wait_for_brokers(kafka)
            except BaseException:
                run.close()  # never started: no "coroutine was never awaited" warning
                raise
        code = await run
    except UsageError as exc:
        fail(command, str(exc), 2)
    except (TxstreamError, LookupError) as exc:
        fail(command, str(exc), 1)
    except KafkaError as exc:
        reason = f"Kafka: {exc}"
        if kafka is not None:
            try:
                await wait_for_brokers(kafka)
            except BrokerError as found:
                reason = str(found)
        fail(command, reason, 1)
    if code:
        raise SystemExit(code)


def note(command: str, message: str) -> None:
    """Print ``txstream COMMAND: message`` on stderr (progress and summaries)."""
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)
