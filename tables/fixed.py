"""Tumbling and hopping windows: fixed-size, epoch-aligned, per customer, with the alert rule."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from .aggregate import Aggregate
from .kindstate import KindState, Records
from .outputs import Alert, Outputs, TransactionLike, WindowRun
from .schedule import DueQueue
from .validate import require_int, require_int_rows
from .watermark import NO_WATERMARK
from .windows import WindowConfig, WindowKind, hopping_starts

__all__ = ["ALERTED", "CLOSED", "COUNT", "FLAGS", "MAX", "MIN", "TOTAL", "CustomerWindows",
           "FixedWindow", "FixedWindowState", "WindowEntry"]

#: A window as the state keeps it, and as its state record lists it:
#: ``[start, count, total, min, max, flags]``. A list, not an object: the core creates
#: five hopping windows per event, and orjson writes lists of ints without Python code.
WindowEntry = list[int]
COUNT, TOTAL, MIN, MAX, FLAGS = 1, 2, 3, 4, 5
#: Bits of ``entry[FLAGS]``. A window has closed once the watermark has reached its end;
#: a customer's record says until when its windows had closed (``"c"``), which matters
#: when it is newer than its partition's record (a flush cut short). Records written
#: before ``"c"`` existed flag each closed window with CLOSED instead.
CLOSED = 1
ALERTED = 2


class FixedWindow(Aggregate):
    """One window's aggregate plus whether it has closed and whether it has alerted.

    What :meth:`FixedWindowState.windows_of` returns: a readable copy of a window entry.
    """

    __slots__ = ("alerted", "closed")

    def __init__(self, count: int = 0, total: int = 0, min: int = 0, max: int = 0,
                 closed: bool = False, alerted: bool = False) -> None:
        super().__init__(count, total, min, max)
        self.closed = closed
        self.alerted = alerted

    @classmethod
    def of(cls, entry: WindowEntry, closed: bool) -> FixedWindow:
        """The window a state entry describes (whether it has closed comes from outside)."""
        _, count, total, lo, hi, flags = entry
        return cls(count, total, lo, hi, closed, bool(flags & ALERTED))


class CustomerWindows:
    """One customer's window entries of one kind, by start, and the highest offset applied."""

    __slots__ = ("closed_before", "offset", "windows")

    def __init__(self, offset: int = -1, windows: dict[int, WindowEntry] | None = None,
                 closed_before: int = NO_WATERMARK) -> None:
        self.offset = offset
        self.windows: dict[int, WindowEntry] = windows if windows is not None else {}
        #: Windows ending by then have closed even if the watermark says otherwise: the
        #: customer's record was newer than its partition's (a flush cut short).
        self.closed_before = closed_before

    def is_closed(self, end: int, watermark: int) -> bool:
        """Whether this customer's window ending at ``end`` has closed."""
        return end <= watermark or end <= self.closed_before


#: A window in a close or expiry schedule: customer id, its entry, the customer's windows
#: (the compiled subclass in tables/compiled.py schedules customer id and windows).
_Scheduled = tuple[Any, ...]
_CUSTOMER = itemgetter(0)


class FixedWindowState(KindState[CustomerWindows]):
    """Tumbling (step == size) or hopping (step < size) windows ``[start, start + size)``.

    With ``alert_threshold`` set, the first event that takes a window's total above it
    produces exactly one :class:`Alert` for that window, at once.
    """

    def __init__(self, kind: WindowKind, config: WindowConfig) -> None:
        super().__init__(config)
        # Scheduled items are (customer id, window entry, the customer's windows): closing
        # and expiring then need no lookups in the state, which for windows of customers
        # in no particular order were memory-bound.
        self._due: DueQueue[_Scheduled] = DueQueue()
        self._expiry: DueQueue[_Scheduled] = DueQueue()
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

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`KindState.apply_batch`, the per-event work inlined.

        This loop runs once per event and window (five hopping windows per event); method
        calls and attribute lookups per event were most of its cost.
        """
        late_offsets: list[int] = []
        customers, dirty_add = self.customers, self.dirty.add
        watermark = self.watermark
        lateness, max_event, value = watermark.lateness_ms, watermark.max_event_ms, watermark.value
        size, step, threshold = self.size, self.step, self.threshold
        push_due, due_buckets = self._due.push, self._due.buckets
        alerts = out.alerts
        applied = self.offset
        late_count = 0
        for offset, tx in records:
            if tx is None:
                continue
            if offset <= applied:
                if marks and offset in marks:
                    marks[offset] = value
                continue
            customer_id = tx.customer_id
            state = customers.get(customer_id)
            if state is not None and offset <= state.offset:
                applied = offset  # rare: the store was ahead of the changelog
                watermark.max_event_ms, watermark.value = max_event, value
                self._rewrite_seen(customer_id, tx)
                max_event, value = watermark.max_event_ms, watermark.value
                if marks and offset in marks:
                    marks[offset] = value
                continue
            applied = offset
            if state is None:
                state = customers[customer_id] = CustomerWindows()
            state.offset = offset
            dirty_add(customer_id)
            windows = state.windows
            t = tx.event_time_ms
            cents = tx.amount_cents
            late = False
            last_start = t - t % step
            # Its record may say more windows have closed than the watermark does.
            closed_before = state.closed_before
            if closed_before < value:
                closed_before = value
            for start in range(last_start - size + step, last_start + 1, step):
                end = start + size
                if end <= closed_before:
                    late = True
                    continue
                window = windows.get(start)
                # Entry indices: 1 count, 2 total, 3 min, 4 max, 5 flags.
                if window is None:
                    window = windows[start] = [start, 1, cents, cents, cents, 0]
                    bucket = due_buckets.get(end)
                    if bucket is None:
                        push_due(end, (customer_id, window, windows))
                    else:
                        bucket.append((customer_id, window, windows))
                else:
                    window[1] += 1
                    window[2] += cents
                    if cents < window[3]:
                        window[3] = cents
                    elif cents > window[4]:
                        window[4] = cents
                if threshold is not None and window[2] > threshold and not window[5] & ALERTED:
                    window[5] |= ALERTED
                    alerts.append(Alert(customer_id, start, end, window[1], window[2],
                                        threshold, tx.tx_id, t))
            if t > max_event:
                max_event = t
                if t - lateness > value:
                    value = t - lateness
            if late:
                late_count += 1
                late_offsets.append(offset)
                if marks is not None:
                    marks[offset] = value
            elif marks and offset in marks:
                marks[offset] = value
        if applied != self.offset:
            self.offset = applied
            self._meta_dirty = True
        watermark.max_event_ms, watermark.value = max_event, value
        self.late += late_count
        return late_offsets

    def _would_be_late(self, tx: TransactionLike) -> bool:
        first = hopping_starts(tx.event_time_ms, self.size, self.step)[0]
        return first + self.size <= self.watermark.value

    def _close(self, watermark: int, out: Outputs) -> None:
        # A scheduled window stays in its customer's dict until it has closed and expired:
        # only expiry removes windows, and loading a state rebuilds the schedules.
        kind, dirty, runs = self.kind, self.dirty, out.runs
        dirty_add = dirty.add
        size, retention = self.size, self.config.retention_ms
        # Epoch-aligned windows close by whole buckets (every customer's window ending at
        # 14:05): a bucket becomes one run of results and one bucket of the expiry
        # schedule. Closing touches no window: the watermark says which have closed, and
        # _dump writes that into the records (see CLOSED). Their customers are written
        # again all the same: a close the idle clock caused is not repeated by a replay.
        for end, bucket in self._due.pop_buckets(watermark):
            runs.append(WindowRun(kind, end - size, end, bucket))
            dirty.update(map(_CUSTOMER, bucket))
            self._expiry.push_all(end + retention, bucket)
        for expiry, bucket in self._expiry.pop_buckets(watermark):
            start = expiry - retention - size
            for customer_id, window, windows in bucket:
                if windows.get(start) is window:
                    del windows[start]
                    dirty_add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerWindows) -> None:
        windows = state.windows
        watermark = self.watermark.value
        for start, window in windows.items():
            end = start + self.size
            if state.is_closed(end, watermark):
                self._expiry.push(end + self.config.retention_ms, (customer_id, window, windows))
            else:
                self._due.push(end, (customer_id, window, windows))

    def _dump(self, state: CustomerWindows) -> Any:
        # The entries are the record's own lists: orjson writes them without Python code.
        # "c": every window ending by then has closed (see CLOSED).
        closed_before = max(self.watermark.value, state.closed_before)
        return {"o": state.offset, "w": list(state.windows.values()), "c": closed_before}

    def _load(self, data: dict[str, Any]) -> CustomerWindows:
        return CustomerWindows(*self._read_record(data))

    def _read_record(self, data: dict[str, Any]) -> tuple[int, dict[int, WindowEntry], int]:
        """A customer record's applied offset, windows by start and closed-before time."""
        offset = require_int(data.get("o"), "the applied offset")
        closed_before = require_int(data.get("c", NO_WATERMARK), "the closed-before time")
        entries = require_int_rows(data.get("w"), 6, "the windows")
        windows: dict[int, WindowEntry] = {}
        for entry in entries:
            if entry[FLAGS] & CLOSED:  # an older record: the flag says what "c" says now
                entry[FLAGS] &= ~CLOSED
                closed_before = max(closed_before, entry[0] + self.size)
            windows[entry[0]] = entry
        return offset, windows, closed_before

    def windows_of(self, customer_id: int) -> list[tuple[int, int, FixedWindow]]:
        """``(start, end, window)`` of a customer's windows, sorted by start (empty if none)."""
        state = self.customers.get(customer_id)
        if state is None:
            return []
        watermark, size = self.watermark.value, self.size
        return [(start, start + size,
                 FixedWindow.of(window, state.is_closed(start + size, watermark)))
                for start, window in sorted(state.windows.items())]
