"""Sliding windows: for each event, the customer's aggregate over the ``size`` before it."""

from __future__ import annotations

from bisect import bisect_right
from heapq import heappush
from typing import Any

from .aggregate import Aggregate
from .kindstate import PerEventKindState
from .outputs import Outputs, SlidingRun, TransactionLike
from .schedule import TimeQueue
from .validate import require_int, require_int_rows
from .windows import WindowConfig, WindowKind

__all__ = ["CustomerEvents", "SlidingState"]


class CustomerEvents:
    """One customer's recent events sorted by time, and how far final results are done.

    Times and amounts are two parallel lists rather than one list of pairs: bisecting
    plain ints and summing a slice of amounts run in C.
    """

    __slots__ = ("amounts", "finalized", "offset", "times")

    def __init__(self, offset: int = -1, events: list[tuple[int, int]] | None = None,
                 finalized: int = -(2**62)) -> None:
        self.offset = offset
        self.times: list[int] = [t for t, _ in events] if events else []
        self.amounts: list[int] = [cents for _, cents in events] if events else []
        #: Every window ending at or before this event time has had its final result.
        self.finalized = finalized

    @property
    def events(self) -> list[tuple[int, int]]:
        """``(event_time, cents)`` of each retained event, oldest first."""
        return list(zip(self.times, self.amounts, strict=True))


class SlidingState(PerEventKindState[CustomerEvents]):
    """Sliding windows ``(t - size, t]``, one per distinct event time ``t`` of a customer.

    The window ending at ``t`` closes when the watermark passes ``t``; an event whose own
    window has closed is late (it would change closed windows) and is not added. Events are
    kept while a window they belong to is open or within the retention.
    """

    kind = WindowKind.SLIDING.value

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self._due: TimeQueue = TimeQueue()
        self._expiry: TimeQueue = TimeQueue()
        self.size = config.sliding_ms
        # Pushed to once per event: the heaps themselves, and how long an event is kept.
        self._due_heap, self._expiry_heap = self._due.heap, self._expiry.heap
        self._kept_ms = self.size + config.retention_ms

    def _new_customer(self) -> CustomerEvents:
        return CustomerEvents()

    def _apply(self, state: CustomerEvents, offset: int, tx: TransactionLike,
               out: Outputs) -> bool:
        state.offset = offset
        t = tx.event_time_ms
        if t < self.watermark.value:
            return True
        times = state.times
        if not times or t > times[-1]:
            # In order, the common case: a new last end.
            times.append(t)
            state.amounts.append(tx.amount_cents)
            is_new_end = True
        else:
            position = bisect_right(times, t)
            is_new_end = position == 0 or times[position - 1] != t
            times.insert(position, t)
            state.amounts.insert(position, tx.amount_cents)
        if is_new_end:
            customer_id = tx.customer_id
            heappush(self._due_heap, (t + 1) << 64 | customer_id)  # TimeQueue.push, inlined
            heappush(self._expiry_heap, (t + self._kept_ms) << 64 | customer_id)
        return False

    def _would_be_late(self, tx: TransactionLike) -> bool:
        return tx.event_time_ms < self.watermark.value

    def aggregate_at(self, state: CustomerEvents, end: int) -> Aggregate:
        """The aggregate of the customer's events in ``(end - size, end]``."""
        times = state.times
        amounts = state.amounts[bisect_right(times, end - self.size):bisect_right(times, end)]
        if not amounts:
            return Aggregate()
        return Aggregate(len(amounts), sum(amounts), min(amounts), max(amounts))

    def _close(self, watermark: int, out: Outputs) -> None:
        customers, size = self.customers, self.size
        rows: list[tuple[int, int, int, int, int, int]] = []
        add_row, dirty_add = rows.append, self.dirty.add
        for _, customer_id in self._due.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            # Walk the events after the last final result, one window per distinct time
            # before the watermark; a customer is often due again for an end it has done.
            times, amounts = state.times, state.amounts
            n = len(times)
            i = bisect_right(times, state.finalized)
            finalized = state.finalized
            while i < n:
                end = times[i]
                if end >= watermark:
                    break
                j = i + 1
                while j < n and times[j] == end:
                    j += 1
                first = bisect_right(times, end - size, 0, i)
                if j - first == 1:
                    # The window holds this one event (a sparse stream's common case).
                    cents = amounts[i]
                    add_row((customer_id, end, 1, cents, cents, cents))
                else:
                    window = amounts[first:j]
                    add_row((customer_id, end, len(window), sum(window), min(window),
                             max(window)))
                finalized = end
                i = j
            if finalized != state.finalized:
                state.finalized = finalized
                dirty_add(customer_id)
        if rows:
            out.runs.append(SlidingRun(self.kind, size, rows))
        horizon = watermark - size - self.config.retention_ms
        for _, customer_id in self._expiry.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            keep = bisect_right(state.times, horizon)
            if keep:
                del state.times[:keep]
                del state.amounts[:keep]
                dirty_add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerEvents) -> None:
        for t in set(state.times):
            if t > state.finalized:
                self._due.push(t + 1, customer_id)
            self._expiry.push(t + self.size + self.config.retention_ms, customer_id)

    def _dump(self, state: CustomerEvents) -> Any:
        return {"o": state.offset, "f": state.finalized,
                "e": list(zip(state.times, state.amounts, strict=True))}

    def _load(self, data: dict[str, Any]) -> CustomerEvents:
        offset, events, finalized = self._read_record(data)
        return CustomerEvents(offset, [(t, c) for t, c in events], finalized)

    @staticmethod
    def _read_record(data: dict[str, Any]) -> tuple[int, list[list[int]], int]:
        """A customer record's applied offset, ``[time, cents]`` events and finalized time."""
        offset = require_int(data.get("o"), "the applied offset")
        finalized = require_int(data.get("f"), "the finalized time")
        return offset, require_int_rows(data.get("e"), 2, "the events"), finalized

    def windows_of(self, customer_id: int) -> list[tuple[int, int, Aggregate]]:
        """``(start, end, aggregate)`` for each distinct event time still retained, oldest first."""
        state = self.customers.get(customer_id)
        if state is None:
            return []
        horizon = self.watermark.value - self.config.retention_ms
        ends = sorted({t for t in state.times if t >= horizon})
        return [(end - self.size, end, self.aggregate_at(state, end)) for end in ends]
