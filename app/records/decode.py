"""Decoding source records: each one a Transaction, or rejected with a reason; never an error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from app.durations import format_duration
from app.exceptions import InvalidRecord

from .speedups import speedups
from .times import format_time
from .transaction import Transaction, parse_transaction

__all__ = ["Decoder", "Reject"]

logger = logging.getLogger(__name__)

#: Called with a rejected source record (it has ``offset``, ``key``, ``value``) and why.
Reject = Callable[[Any, str], None]
#: ``(value, key) -> Transaction``, raising InvalidRecord with a reason.
Parse = Callable[[bytes | None, bytes | None], Transaction]

#: Characters of an unexpected error's message kept in a dead-letter reason.
_ERROR_TEXT = 120


class Decoder:
    """Turns a batch of source records into ``(offset, transaction)`` in offset order.

    ``None`` in place of a transaction marks a rejected record, which goes to ``reject``
    with its reason: it did not parse or validate, or its event time is further ahead of
    the wall clock than ``max_ahead_ms`` (such a time would move the partition's
    watermark into the future and make every later event late). Whatever goes wrong
    while one record is decoded, even an error nobody foresaw, rejects that record and
    no other: a record can never stop the pipeline.
    """

    def __init__(self, max_ahead_ms: int | None, *, setting: str = "TXSTREAM_MAX_EVENT_AHEAD",
                 parse: Parse = parse_transaction) -> None:
        self.max_ahead_ms = max_ahead_ms
        self.setting = setting
        self.parse = parse
        self._reported: set[type[BaseException]] = set()

    def decode(self, records: Iterable[Any], wall_ms: int,
               reject: Reject) -> list[tuple[int, Transaction | None]]:
        """Every record's ``(offset, transaction or None)``; rejects go to ``reject``."""
        latest = None if self.max_ahead_ms is None else wall_ms + self.max_ahead_ms
        if self.parse is parse_transaction and speedups is not None and (
                latest is None or latest >= 0):
            # The compiled loop takes the common valid records; the rest are decided here.
            batch = records if isinstance(records, list) else list(records)
            decoded, rest = speedups.decode_common(batch, -1 if latest is None else latest)
            for index in rest:
                decoded[index] = self._decode_one(batch[index], latest, wall_ms, reject)
            return decoded
        return [self._decode_one(record, latest, wall_ms, reject) for record in records]

    def _decode_one(self, record: Any, latest: int | None, wall_ms: int,
                    reject: Reject) -> tuple[int, Transaction | None]:
        try:
            tx = self.parse(record.value, record.key)
        except InvalidRecord as exc:
            reject(record, exc.reason)
            return record.offset, None
        except Exception as exc:  # a bug of ours: the record is rejected, not the batch
            reject(record, self._unexpected(exc))
            return record.offset, None
        if latest is not None and tx.event_time_ms > latest:
            reject(record, self._ahead_reason(tx.event_time_ms, wall_ms))
            return record.offset, None
        return record.offset, tx

    def _ahead_reason(self, event_ms: int, wall_ms: int) -> str:
        assert self.max_ahead_ms is not None
        return (f"event_time {format_time(event_ms)} is {format_duration(event_ms - wall_ms)} "
                f"ahead of the wall clock ({format_time(wall_ms)}); at most "
                f"{format_duration(self.max_ahead_ms)} is accepted ({self.setting})")

    def _unexpected(self, exc: Exception) -> str:
        kind = type(exc)
        if kind not in self._reported:
            # Once per kind of error: the traceback says where the parser needs mending.
            self._reported.add(kind)
            logger.error("a record could not be decoded (%s); it goes to the dead-letter "
                         "topic, and so will others that fail the same way",
                         kind.__name__, exc_info=exc)
        text = str(exc)
        if len(text) > _ERROR_TEXT:
            text = text[: _ERROR_TEXT - 3] + "..."
        return f"could not be decoded: {kind.__name__}: {text}" if text else (
            f"could not be decoded: {kind.__name__}")
