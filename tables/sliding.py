"""Sliding windows: for each event, the customer's aggregate over the ``size`` before it."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from .aggregate import Aggregate
from .kindstate import KindState
from .outputs import Outputs, TransactionLike, WindowResult
from .schedule import TimeQueue
from .windows import WindowConfig, WindowKind

#: Sorts after every event at the same time: ``bisect_right(events, (t, _AFTER))``.
_AFTER = 2**62

__all__ = ["CustomerEvents", "SlidingState"]


class CustomerEvents:
    """One customer's recent events ``(event_time, cents)`` sorted by time, and finals done."""

    __slots__ = ("events", "finalized", "offset")

    def __init__(self, offset: int = -1, events: list[tuple[int, int]] | None = None,
                 finalized: int = -(2**62)) -> None:
        self.offset = offset
        self.events: list[tuple[int, int]] = events if events is not None else []
        #: Every window ending at or before this event time has had its final result.
        self.finalized = finalized


class SlidingState(KindState[CustomerEvents]):
    """Sliding windows ``(t - size, t]``, one per distinct event time ``t`` of a customer.

    The window ending at ``t`` closes when the watermark passes ``t``; an event whose own
    window has closed is late (it would change closed windows) and is not added. Events are
    kept while a window they belong to is open or within the retention.
    """

    kind = WindowKind.SLIDING.value

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self._due: TimeQueue[int] = TimeQueue()
        self._expiry: TimeQueue[int] = TimeQueue()
        self.size = config.sliding_ms

    def _new_customer(self) -> CustomerEvents:
        return CustomerEvents()

    def _customer_offset(self, state: CustomerEvents) -> int:
        return state.offset

    def _apply(self, state: CustomerEvents, offset: int, tx: TransactionLike,
               out: Outputs) -> bool:
        state.offset = offset
        t = tx.event_time_ms
        if t < self.watermark.value:
            return True
        events = state.events
        position = bisect_right(events, (t, _AFTER))
        is_new_end = position == 0 or events[position - 1][0] != t
        events.insert(position, (t, tx.amount_cents))
        if is_new_end:
            self._due.push(t + 1, tx.customer_id)
            self._expiry.push(t + self.size + self.config.retention_ms, tx.customer_id)
        return False

    def _would_be_late(self, tx: TransactionLike) -> bool:
        return tx.event_time_ms < self.watermark.value

    def aggregate_at(self, state: CustomerEvents, end: int) -> Aggregate:
        """The aggregate of the customer's events in ``(end - size, end]``."""
        events = state.events
        lo = bisect_right(events, (end - self.size, _AFTER))
        hi = bisect_right(events, (end, _AFTER))
        agg = Aggregate()
        for _, cents in events[lo:hi]:
            agg.add(cents)
        return agg

    def _close(self, watermark: int, out: Outputs) -> None:
        customers, size, kind = self.customers, self.size, self.kind
        results, dirty_add = out.results, self.dirty.add
        for _, customer_id in self._due.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            # Walk the events after the last final result, one window per distinct time
            # before the watermark; a customer is often due again for an end it has done.
            events = state.events
            n = len(events)
            i = bisect_right(events, (state.finalized, _AFTER))
            finalized = state.finalized
            while i < n:
                end = events[i][0]
                if end >= watermark:
                    break
                j = i + 1
                while j < n and events[j][0] == end:
                    j += 1
                lo = bisect_right(events, (end - size, _AFTER), 0, i)
                first = events[lo][1]
                count, total, low, high = 0, 0, first, first
                for _, cents in events[lo:j]:
                    count += 1
                    total += cents
                    if cents < low:
                        low = cents
                    elif cents > high:
                        high = cents
                results.append(WindowResult(kind, customer_id, end - size, end, count, total,
                                            low, high))
                finalized = end
                i = j
            if finalized != state.finalized:
                state.finalized = finalized
                dirty_add(customer_id)
        horizon = watermark - size - self.config.retention_ms
        for _, customer_id in self._expiry.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            keep = bisect_right(state.events, (horizon, _AFTER))
            if keep:
                del state.events[:keep]
                dirty_add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerEvents) -> None:
        for t in {t for t, _ in state.events}:
            if t > state.finalized:
                self._due.push(t + 1, customer_id)
            self._expiry.push(t + self.size + self.config.retention_ms, customer_id)

    def _dump(self, state: CustomerEvents) -> Any:
        return {"o": state.offset, "f": state.finalized, "e": state.events}

    def _load(self, data: Any) -> CustomerEvents:
        return CustomerEvents(data["o"], [(t, c) for t, c in data["e"]], data["f"])

    def windows_of(self, customer_id: int) -> list[tuple[int, int, Aggregate]]:
        """``(start, end, aggregate)`` for each distinct event time still retained, oldest first."""
        state = self.customers.get(customer_id)
        if state is None:
            return []
        horizon = self.watermark.value - self.config.retention_ms
        ends = sorted({t for t, _ in state.events if t >= horizon})
        return [(end - self.size, end, self.aggregate_at(state, end)) for end in ends]
