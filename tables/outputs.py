"""Output records of the windowing core: alerts, window results, sessions, late events.

Plain slotted dataclasses rather than frozen ones: a frozen dataclass's ``__init__`` sets
each field through ``object.__setattr__``, and the core creates one per closed window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Alert", "DuplicateConflict", "LateEvent", "Outputs", "SessionResult", "SlidingRun",
           "TransactionLike", "WindowResult", "WindowRun"]


class TransactionLike(Protocol):
    """What the core needs of a transaction (``app.records.Transaction`` satisfies it)."""

    @property
    def tx_id(self) -> str: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def amount_cents(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...


@dataclass(slots=True)
class WindowResult:
    """The final aggregate of one closed window: ``[start, end)``; sliding: ``(start, end]``."""

    kind: str
    customer_id: int
    start_ms: int
    end_ms: int
    count: int
    total: int
    min: int
    max: int

    @property
    def result_id(self) -> str:
        """Deterministic id: the same window always gets the same id."""
        return f"{self.kind}:{self.customer_id}:{self.start_ms}"


@dataclass(slots=True)
class WindowRun:
    """Fixed windows of one kind that closed together: the same bounds, one per customer.

    Epoch-aligned windows close by the thousand at each boundary. A run holds each
    window's ``(customer_id, entry, ...)``, the entry being the state's own ``[start,
    count, total, min, max, flags]`` list (a closed window never changes) and anything
    after it the core's own, instead of a :class:`WindowResult` object per window:
    creating those was a tenth of the worker's CPU.
    """

    kind: str
    start_ms: int
    end_ms: int
    windows: Sequence[tuple[int, Sequence[int], object]]

    def __len__(self) -> int:
        return len(self.windows)

    def results(self) -> Iterator[WindowResult]:
        """The run as one :class:`WindowResult` per window."""
        kind, start, end = self.kind, self.start_ms, self.end_ms
        for customer_id, (_, count, total, low, high, *_), _ in self.windows:
            yield WindowResult(kind, customer_id, start, end, count, total, low, high)


@dataclass(slots=True)
class SlidingRun:
    """Sliding windows that closed in one step, as ``(customer_id, end, count, total, min,
    max)`` rows; each window is ``(end - size, end]``.

    Rows rather than a :class:`WindowResult` per window, as for :class:`WindowRun`: the
    core closes one sliding window per event.
    """

    kind: str
    size_ms: int
    #: A list, or the compiled core's packed rows (read as the same tuples).
    rows: Sequence[tuple[int, int, int, int, int, int]]

    def __len__(self) -> int:
        return len(self.rows)

    def results(self) -> Iterator[WindowResult]:
        """The run as one :class:`WindowResult` per window."""
        kind, size = self.kind, self.size_ms
        for customer_id, end, count, total, low, high in self.rows:
            yield WindowResult(kind, customer_id, end - size, end, count, total, low, high)


@dataclass(slots=True)
class Alert:
    """A customer's tumbling-window total passed the threshold (one per customer and window)."""

    customer_id: int
    window_start_ms: int
    window_end_ms: int
    count: int
    total: int
    threshold: int
    tx_id: str
    event_time_ms: int

    @property
    def alert_id(self) -> str:
        """Deterministic id: customer and window."""
        return f"{self.customer_id}:{self.window_start_ms}"


@dataclass(slots=True)
class SessionResult:
    """A closed session: first and last event time, count, amounts."""

    customer_id: int
    start_ms: int
    end_ms: int
    count: int
    total: int
    min: int
    max: int

    @property
    def session_id(self) -> str:
        """Deterministic id: customer and session start."""
        return f"{self.customer_id}:{self.start_ms}"

    @property
    def duration_ms(self) -> int:
        """Time from first to last event."""
        return self.end_ms - self.start_ms


@dataclass(slots=True)
class LateEvent:
    """An event that arrived after some of its windows had closed; they were not changed."""

    offset: int
    tx: TransactionLike
    kinds: tuple[str, ...]
    watermark_ms: int


@dataclass(slots=True)
class DuplicateConflict:
    """A record whose ``tx_id`` its partition applied earlier with other content.

    It changes no window: it goes to the dead-letter topic, with a reason that names the
    earlier offset and what the earlier record said.
    """

    offset: int
    tx: TransactionLike
    earlier_offset: int
    earlier_customer_id: int
    earlier_amount_cents: int
    earlier_event_time_ms: int


@dataclass(slots=True, eq=False)
class Outputs:
    """Everything one batch or tick produced, in the order it happened.

    The core puts window results in ``runs``; ``results`` holds single ones (tests, tools).
    Every kind's are in :meth:`window_results`.
    """

    alerts: list[Alert] = field(default_factory=list)
    runs: list[WindowRun | SlidingRun] = field(default_factory=list)
    results: list[WindowResult] = field(default_factory=list)
    sessions: list[SessionResult] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    #: Records rejected by the duplicate check; the pipeline dead-letters them.
    conflicts: list[DuplicateConflict] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.runs or self.results or self.sessions or self.late
                    or self.conflicts)

    def __eq__(self, other: object) -> bool:
        # Whether a result travels in a run or on its own is how it was produced, not
        # what it is: equal outputs hold the same records in the same order.
        if not isinstance(other, Outputs):
            return NotImplemented
        return (self.alerts == other.alerts and self.window_results() == other.window_results()
                and self.sessions == other.sessions and self.late == other.late
                and self.conflicts == other.conflicts)

    def window_results(self) -> list[WindowResult]:
        """Every closed window's result: the runs in the order they closed, then the rest."""
        return [result for run in self.runs for result in run.results()] + self.results

    def extend(self, other: Outputs) -> None:
        """Append another batch's outputs."""
        self.alerts.extend(other.alerts)
        self.runs.extend(other.runs)
        self.results.extend(other.results)
        self.sessions.extend(other.sessions)
        self.late.extend(other.late)
        self.conflicts.extend(other.conflicts)
