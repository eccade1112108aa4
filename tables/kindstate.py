"""KindState: what every window kind shares: watermark, applied offset, dirty set, records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson

from .outputs import Outputs, TransactionLike
from .schedule import DueQueue, Schedule
from .validate import CorruptRecord, require, require_int, require_int_rows
from .watermark import Watermark
from .windows import WindowConfig

__all__ = ["META_KEY", "KindState", "PerEventKindState", "Records"]

#: Key of the per-partition record in every kind's table. Customer keys are decimal digits,
#: so it cannot collide; it is written last in every flush (see :meth:`KindState.dump_dirty`).
META_KEY = b"~partition"

C = TypeVar("C")

#: A batch of source records in offset order; ``None`` marks an invalid record.
Records = Sequence[tuple[int, TransactionLike | None]]


class KindState(ABC, Generic[C]):
    """All customers' state of one window kind in one partition.

    Each kind is its own deterministic state machine over the partition's events in offset
    order, with its own copy of the watermark: its table's records then describe a state
    that is consistent on its own (the records of one flush land in one changelog
    partition in order, the partition record last), so after a crash each kind resumes
    from exactly the offset its own table says it had applied.
    """

    kind: str

    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self.watermark = Watermark(config.allowed_lateness_ms, config.idle_timeout_ms)
        #: Highest source offset this kind has applied in this partition.
        self.offset = -1
        #: Events this kind could not place because their window had closed.
        self.late = 0
        self.counters: dict[str, int] = {}
        self.customers: dict[int, C] = {}
        self.dirty: set[int] = set()
        self._meta_dirty = False
        #: When windows close and when closed ones leave; kinds with unaligned times
        #: replace these with :class:`~tables.schedule.TimeQueue`.
        self._due: Schedule[Any] = DueQueue()
        self._expiry: Schedule[Any] = DueQueue()

    # -- processing ---------------------------------------------------------------------

    @abstractmethod
    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """Apply a batch in offset order (skipping invalid records); return the late offsets.

        With ``marks``, also note this kind's watermark just after each of its late events
        and after each offset already in ``marks``: the late-transactions record of an
        event carries the partition's watermark then. Kinds may apply a whole batch one
        after the other because each is a state machine of its own and windows close
        only once the batch is in (:meth:`advance`).
        """

    def _rewrite_seen(self, customer_id: int, tx: TransactionLike) -> None:
        """An event that its customer's record already holds, at an offset past this kind's.

        The local store was ahead of the last complete flush when the worker died: write
        the record again so the changelog catches up with the store.
        """
        self.dirty.add(customer_id)
        if self._would_be_late(tx):
            # Its late output went out before that record was written; the count lives
            # in the partition record, which is older, so count it again here.
            self.late += 1
        self.watermark.observe(tx.event_time_ms)

    def add_counts(self, counts: dict[str, int], last_offset: int) -> None:
        """Add partition counters for records up to ``last_offset`` that were not events."""
        counters = self.counters
        for name, number in counts.items():
            if number:
                counters[name] = counters.get(name, 0) + number
                self._meta_dirty = True
        if last_offset > self.offset:
            self.offset = last_offset
            self._meta_dirty = True

    def advance(self, wall_ms: int | None, out: Outputs) -> None:
        """Close what the watermark has passed (after idling, if ``wall_ms`` says so)."""
        if wall_ms is not None and self.watermark.on_idle(wall_ms):
            self._meta_dirty = True
        self._close(self.watermark.value, out)

    def mark_input(self, wall_ms: int) -> None:
        """Note that a batch arrived at ``wall_ms`` (the idle clock restarts)."""
        self.watermark.mark_input(wall_ms)

    # -- state records ----------------------------------------------------------------

    def dump_dirty(self) -> list[tuple[bytes, bytes]]:
        """Records of every changed customer, then the partition record; clears dirty marks."""
        records = [
            (str(customer_id).encode(), orjson.dumps(self._dump(self.customers[customer_id])))
            for customer_id in self.dirty
            if customer_id in self.customers
        ]
        self.dirty.clear()
        if records or self._meta_dirty:
            records.append((META_KEY, orjson.dumps(self._dump_meta())))
            self._meta_dirty = False
        return records

    def load(self, key: bytes, value: bytes) -> None:
        """Restore one record written by :meth:`dump_dirty` (call :meth:`finish_load` after).

        A record txstream did not write (or a damaged one) raises :class:`CorruptRecord`
        and changes nothing: everything is checked before anything is taken.
        """
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise CorruptRecord("not JSON") from None
        require(type(data) is dict, "not a JSON object")
        if key == META_KEY:
            offset = require_int(data.get("o"), "the applied offset")
            watermark = require_int_rows([data.get("wm")], 2, "the watermark")[0]
            late = require_int(data.get("late", 0), "the late count")
            counters = data.get("c", {})
            require(type(counters) is dict and all(type(n) is int for n in counters.values()),
                    "the counters are not integers by name")
            self.offset = max(self.offset, offset)
            self.watermark.restore(watermark)
            self.late = late
            self.counters = dict(counters)
        else:
            require(key.isdigit() and 0 < len(key) <= 19, "the key is not a customer id")
            self.customers[int(key)] = self._load(data)

    def finish_load(self) -> None:
        """Rebuild the close and expiry schedules from the loaded customers."""
        self._due.clear()
        self._expiry.clear()
        for customer_id, state in self.customers.items():
            self._schedule(customer_id, state)

    def _dump_meta(self) -> dict[str, Any]:
        return {"o": self.offset, "wm": self.watermark.to_list(), "late": self.late,
                "c": self.counters}

    # -- per kind ---------------------------------------------------------------------

    @abstractmethod
    def _would_be_late(self, tx: TransactionLike) -> bool: ...

    @abstractmethod
    def _close(self, watermark: int, out: Outputs) -> None: ...

    @abstractmethod
    def _schedule(self, customer_id: int, state: C) -> None: ...

    @abstractmethod
    def _dump(self, state: C) -> Any: ...

    @abstractmethod
    def _load(self, data: dict[str, Any]) -> C:
        """A customer's state from its record; CorruptRecord if it is not one of ours."""


class PerEventKindState(KindState[C]):
    """A kind whose batch loop calls :meth:`_apply` for each event (sliding, sessions).

    Each customer's state has an ``offset`` attribute: the highest offset applied to it.
    """

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`KindState.apply_batch`, calling :meth:`_apply` once per event."""
        late_offsets: list[int] = []
        customers, dirty_add = self.customers, self.dirty.add
        new_customer, apply_one = self._new_customer, self._apply
        watermark = self.watermark
        applied = self.offset
        late_count = 0
        for offset, tx in records:
            if tx is None:
                continue
            if offset <= applied:
                if marks and offset in marks:
                    marks[offset] = watermark.value
                continue
            customer_id = tx.customer_id
            state = customers.get(customer_id)
            if state is not None and offset <= state.offset:  # type: ignore[attr-defined]
                applied = offset  # rare: the store was ahead of the changelog
                self._rewrite_seen(customer_id, tx)
                if marks and offset in marks:
                    marks[offset] = watermark.value
                continue
            applied = offset
            if state is None:
                state = customers[customer_id] = new_customer()
            dirty_add(customer_id)
            late = apply_one(state, offset, tx, out)
            if tx.event_time_ms > watermark.max_event_ms:
                watermark.observe(tx.event_time_ms)
            if late:
                late_count += 1
                late_offsets.append(offset)
                if marks is not None:
                    marks[offset] = watermark.value
            elif marks and offset in marks:
                marks[offset] = watermark.value
        if applied != self.offset:
            self.offset = applied
            self._meta_dirty = True
        self.late += late_count
        return late_offsets

    @abstractmethod
    def _new_customer(self) -> C:
        """A customer's empty state; it has an ``offset`` attribute (highest applied)."""

    @abstractmethod
    def _apply(self, state: C, offset: int, tx: TransactionLike, out: Outputs) -> bool:
        """Apply one new event of one customer; True if it was late for this kind."""
