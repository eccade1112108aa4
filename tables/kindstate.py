"""KindState: what every window kind shares: customers, dirty set, schedules, records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson

from .outputs import Outputs, TransactionLike
from .schedule import DueQueue, Schedule
from .tablestate import META_KEY, TableState
from .validate import CorruptRecord, require, require_int
from .windows import WindowConfig

__all__ = ["META_KEY", "KindState", "PerEventKindState", "Records"]

C = TypeVar("C")

#: A batch of source records in offset order; ``None`` marks an invalid record.
Records = Sequence[tuple[int, TransactionLike | None]]


class KindState(TableState, ABC, Generic[C]):
    """All customers' state of one window kind in one partition.

    Each kind is its own deterministic state machine over the partition's events in offset
    order (see :class:`~tables.tablestate.TableState`): the records of one flush land in
    one changelog partition in order, the partition record last, so after a crash each
    kind resumes from exactly the offset its own table says it had applied.
    """

    kind: str

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        #: Events this kind could not place because their window had closed.
        self.late = 0
        self.customers: dict[int, C] = {}
        self.dirty: set[int] = set()
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

    def advance(self, wall_ms: int | None, out: Outputs) -> None:
        """Close what the watermark has passed (after idling, if ``wall_ms`` says so)."""
        self._on_idle(wall_ms)
        self._close(self.watermark.value, out)

    # -- state records ----------------------------------------------------------------

    def dump_dirty(self) -> list[tuple[bytes, bytes]]:
        """Records of every changed customer, then the partition record; clears dirty marks."""
        records = self._customer_records()
        self.dirty.clear()
        if records or self._meta_dirty:
            records.append((META_KEY, orjson.dumps(self._dump_meta())))
            self._meta_dirty = False
        return records

    def _customer_records(self) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of every dirty customer's record (the dirty marks stay)."""
        return [
            (str(customer_id).encode(), orjson.dumps(self._dump(self.customers[customer_id])))
            for customer_id in self.dirty
            if customer_id in self.customers
        ]

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
            late = require_int(data.get("late", 0), "the late count")
            self._load_meta(data)
            self.late = late
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
