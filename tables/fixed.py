"""Tumbling and hopping windows: fixed-size, epoch-aligned, per customer, with the alert rule."""

from __future__ import annotations

from typing import Any

from .aggregate import Aggregate
from .kindstate import KindState
from .outputs import Alert, Outputs, TransactionLike, WindowResult
from .windows import WindowConfig, WindowKind, hopping_starts

__all__ = ["CustomerWindows", "FixedWindow", "FixedWindowState"]

_CLOSED = 1
_ALERTED = 2


class FixedWindow(Aggregate):
    """One window's aggregate plus whether it has closed and whether it has alerted."""

    __slots__ = ("alerted", "closed")

    def __init__(self, count: int = 0, total: int = 0, min: int = 0, max: int = 0,
                 closed: bool = False, alerted: bool = False) -> None:
        # Set directly, not through super().__init__: hopping windows are created five per
        # event, and the extra call was a tenth of the worker's time.
        self.count = count
        self.total = total
        self.min = min
        self.max = max
        self.closed = closed
        self.alerted = alerted


class CustomerWindows:
    """One customer's windows of one kind, by start, and the highest offset applied to them."""

    __slots__ = ("offset", "windows")

    def __init__(self, offset: int = -1, windows: dict[int, FixedWindow] | None = None) -> None:
        self.offset = offset
        self.windows: dict[int, FixedWindow] = windows if windows is not None else {}


class FixedWindowState(KindState[CustomerWindows]):
    """Tumbling (step == size) or hopping (step < size) windows ``[start, start + size)``.

    With ``alert_threshold`` set, the first event that takes a window's total above it
    produces exactly one :class:`Alert` for that window, at once.
    """

    def __init__(self, kind: WindowKind, config: WindowConfig) -> None:
        super().__init__(config)
        self.kind = kind.value
        if kind is WindowKind.TUMBLING:
            self.size = self.step = config.tumbling_ms
            self.threshold: int | None = config.alert_threshold_cents
        elif kind is WindowKind.HOPPING:
            self.size, self.step = config.hopping_size_ms, config.hopping_step_ms
            self.threshold = None
        else:
            message = f"fixed windows are tumbling or hopping, not {kind.value}"
            raise ValueError(message)

    def _new_customer(self) -> CustomerWindows:
        return CustomerWindows()

    def _customer_offset(self, state: CustomerWindows) -> int:
        return state.offset

    def _apply(self, state: CustomerWindows, offset: int, tx: TransactionLike,
               out: Outputs) -> bool:
        state.offset = offset
        t = tx.event_time_ms
        size = self.size
        watermark = self.watermark.value
        windows = state.windows
        late = False
        starts = (t - t % size,) if self.step == size else hopping_starts(t, size, self.step)
        for start in starts:
            end = start + size
            window = windows.get(start)
            # The flag matters when the partition record restored is older than this
            # customer's record: a window it closed stays closed.
            if end <= watermark or (window is not None and window.closed):
                late = True
                continue
            if window is None:
                cents = tx.amount_cents
                window = windows[start] = FixedWindow(1, cents, cents, cents)
                self._due.push(end, (tx.customer_id, start))
            else:
                window.add(tx.amount_cents)
            threshold = self.threshold
            if threshold is not None and not window.alerted and window.total > threshold:
                window.alerted = True
                out.alerts.append(Alert(tx.customer_id, start, end, window.count, window.total,
                                        threshold, tx.tx_id, t))
        return late

    def _would_be_late(self, tx: TransactionLike) -> bool:
        t = tx.event_time_ms
        first = t - t % self.size if self.step == self.size else hopping_starts(
            t, self.size, self.step)[0]
        return first + self.size <= self.watermark.value

    def _close(self, watermark: int, out: Outputs) -> None:
        customers = self.customers
        kind, dirty, results = self.kind, self.dirty, out.results
        retention = self.config.retention_ms
        # Epoch-aligned windows close by whole buckets (every customer's window ending at
        # 14:05): handle a bucket at once and schedule its expiry as one bucket.
        for end, bucket in self._due.pop_buckets(watermark):
            for customer_id, start in bucket:
                state = customers.get(customer_id)
                window = state.windows.get(start) if state is not None else None
                if window is None or window.closed:
                    continue
                window.closed = True
                dirty.add(customer_id)
                results.append(WindowResult(kind, customer_id, start, end, window.count,
                                            window.total, window.min, window.max))
            self._expiry.push_all(end + retention, bucket)
        for _, (customer_id, start) in self._expiry.pop_due(watermark):
            state = customers.get(customer_id)
            if state is not None and state.windows.pop(start, None) is not None:
                self.dirty.add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerWindows) -> None:
        for start, window in state.windows.items():
            end = start + self.size
            if window.closed:
                self._expiry.push(end + self.config.retention_ms, (customer_id, start))
            else:
                self._due.push(end, (customer_id, start))

    def _dump(self, state: CustomerWindows) -> Any:
        return {"o": state.offset, "w": [
            [start, w.count, w.total, w.min, w.max,
             (_CLOSED if w.closed else 0) | (_ALERTED if w.alerted else 0)]
            for start, w in state.windows.items()]}

    def _load(self, data: Any) -> CustomerWindows:
        windows = {
            start: FixedWindow(count, total, lo, hi, bool(flags & _CLOSED), bool(flags & _ALERTED))
            for start, count, total, lo, hi, flags in data["w"]
        }
        return CustomerWindows(data["o"], windows)

    def windows_of(self, customer_id: int) -> list[tuple[int, int, FixedWindow]]:
        """``(start, end, window)`` of a customer's windows, sorted by start (empty if none)."""
        state = self.customers.get(customer_id)
        if state is None:
            return []
        return [(start, start + self.size, state.windows[start]) for start in sorted(state.windows)]
