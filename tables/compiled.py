"""The window kinds with their state in C arrays, where the optional extensions were built.

:class:`CompiledFixedWindowState` (``tables/_fixedcore.pyx``) and
:class:`CompiledSlidingState` (``tables/_eventcore.pyx``) are the Python kinds with their
batch loop, closing and expiry compiled: the same results, records and views
(tests/unit/tables/test_compiled_kinds.py applies both to the same events), several times
faster on the windows' own work (README, Performance). The factories give them where the
extensions were built and the Python classes otherwise, so a machine without a C++
compiler runs the same pipeline.
"""

from __future__ import annotations

from typing import Any

from .aggregate import Aggregate
from .dedupe import Records as CheckedRecords
from .dedupe import TxIdState
from .fixed import FixedWindowState
from .kindstate import Records
from .outputs import Outputs
from .sessions import SessionState
from .sliding import SlidingState
from .validate import CorruptRecord
from .windows import WindowConfig, WindowKind

try:
    from . import _eventcore, _fixedcore
except ImportError:  # installed without a C++ compiler: the Python classes do the work
    _fixedcore = _eventcore = None  # type: ignore[assignment]
try:
    from . import _dedupecore
except ImportError:  # installed without a C compiler
    _dedupecore = None  # type: ignore[assignment]

__all__ = [
    "COMPILED",
    "CompiledFixedWindowState",
    "CompiledSessionState",
    "CompiledSlidingState",
    "CompiledTxIdState",
    "PackedRows",
    "fixed_window_state",
    "session_state",
    "sliding_state",
    "txid_state",
]

#: Whether the compiled window kinds are in use.
COMPILED = _fixedcore is not None

#: The type of the compiled core's packed window runs (see ``_fixedcore.PackedRows``);
#: a placeholder type no run has when the core was not built.
PackedRows: type = _fixedcore.PackedRows if _fixedcore is not None else type(None)


class CompiledFixedWindowState(FixedWindowState):
    """:class:`FixedWindowState` whose customers are ``_fixedcore.WindowList`` objects.

    A ``WindowList`` answers what the views, the dashboard and the report ask of a
    ``CustomerWindows`` (``offset``, ``closed_before``, ``is_closed``, ``windows`` as a
    copy); close and expiry schedules hold ``(customer id, WindowList)``.
    """

    def __init__(self, kind: WindowKind, config: WindowConfig) -> None:
        super().__init__(kind, config)
        self._due = _fixedcore.Buckets()  # type: ignore[assignment]
        self._expiry = _fixedcore.Buckets()  # type: ignore[assignment]

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`FixedWindowState.apply_batch`, compiled."""
        return _fixedcore.apply_batch(self, records, out, marks)

    def _close(self, watermark: int, out: Outputs) -> None:
        _fixedcore.close(self, watermark, out)

    def _schedule(self, customer_id: int, state: Any) -> None:
        watermark, size = self.watermark.value, self.size
        retention = self.config.retention_ms
        item = (customer_id, state)
        for entry in state.entries():
            end = entry[0] + size
            if state.is_closed(end, watermark):
                self._expiry.push(end + retention, item)
            else:
                self._due.push(end, item)

    def _customer_records(self) -> list[tuple[bytes, bytes]]:
        return _fixedcore.dump_records(self.customers, self.dirty, self.watermark.value)

    def _dump(self, state: Any) -> Any:
        # The layout _customer_records writes in C (the tests compare the bytes).
        closed_before = max(self.watermark.value, state.closed_before)
        return {"o": state.offset, "w": state.entries(), "c": closed_before}

    def _load(self, data: dict[str, Any]) -> Any:
        offset, windows, closed_before = self._read_record(data)
        try:
            state = _fixedcore.WindowList(offset, closed_before)
        except OverflowError:
            raise CorruptRecord("the offset or closed-before time is out of range") from None
        state.set_entries(list(windows.values()))
        return state


class CompiledSlidingState(SlidingState):
    """:class:`SlidingState` whose customers are ``_eventcore.EventList`` objects and
    whose schedules are ``_eventcore.TimeHeap`` objects (the same order as ``TimeQueue``)."""

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self._due = _eventcore.TimeHeap()  # type: ignore[assignment]
        self._expiry = _eventcore.TimeHeap()  # type: ignore[assignment]

    def _new_customer(self) -> Any:
        return _eventcore.EventList()

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`PerEventKindState.apply_batch` with :meth:`SlidingState._apply`, compiled."""
        return _eventcore.sliding_apply_batch(self, records, out, marks)

    def _close(self, watermark: int, out: Outputs) -> None:
        _eventcore.sliding_close(self, watermark, out)

    def aggregate_at(self, state: Any, end: int) -> Aggregate:
        """The aggregate of the customer's events in ``(end - size, end]``."""
        count, total, low, high = state.aggregate(end - self.size, end)
        return Aggregate(count, total, low, high) if count else Aggregate()

    def _customer_records(self) -> list[tuple[bytes, bytes]]:
        return _eventcore.sliding_dump_records(self.customers, self.dirty)

    def _dump(self, state: Any) -> Any:
        # The layout _customer_records writes in C (the tests compare the bytes).
        return {"o": state.offset, "f": state.finalized, "e": state.events}

    def _load(self, data: dict[str, Any]) -> Any:
        offset, events, finalized = self._read_record(data)
        try:
            state = _eventcore.EventList(offset, finalized)
        except OverflowError:
            raise CorruptRecord("the offset or finalized time is out of range") from None
        state.set_events(events)
        return state


class CompiledSessionState(SessionState):
    """:class:`SessionState` whose customers are ``_eventcore.SessionList`` objects and
    whose schedules are ``_eventcore.TimeHeap`` objects (the same order as ``TimeQueue``)."""

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self._due = _eventcore.TimeHeap()  # type: ignore[assignment]
        self._expiry = _eventcore.TimeHeap()  # type: ignore[assignment]

    def _new_customer(self) -> Any:
        return _eventcore.SessionList()

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`PerEventKindState.apply_batch` with :meth:`SessionState._apply`, compiled."""
        return _eventcore.session_apply_batch(self, records, out, marks)

    def _close(self, watermark: int, out: Outputs) -> None:
        _eventcore.session_close(self, watermark, out)

    def _customer_records(self) -> list[tuple[bytes, bytes]]:
        return _eventcore.session_dump_records(self.customers, self.dirty)

    def _dump(self, state: Any) -> Any:
        # The layout _customer_records writes in C (the tests compare the bytes).
        return {"o": state.offset, "s": state.sessions}

    def _load(self, data: dict[str, Any]) -> Any:
        offset, entries = self._read_record(data)
        try:
            state = _eventcore.SessionList(offset)
        except OverflowError:
            raise CorruptRecord("the offset is out of range") from None
        state.set_sessions(entries)
        return state


class CompiledTxIdState(TxIdState):
    """:class:`TxIdState` with its per-record loop and its segment records compiled
    (``tables/_dedupecore.pyx``): the same rule, entries and records."""

    def apply_batch(self, records: CheckedRecords, out: Outputs) -> CheckedRecords:
        """:meth:`TxIdState.apply_batch`, compiled."""
        return _dedupecore.apply_batch(self, records, out)

    def _segment_record(self, tx_ids: list[str]) -> bytes:
        return _dedupecore.segment_record(tx_ids, self.seen)

    def _release(self, tx_ids: list[str], watermark: int) -> None:
        _dedupecore.release(self, tx_ids, watermark)


def use_python_kinds() -> None:
    """From now on the factories give the Python kinds (``python -m bench.core
    --python-kinds`` compares the two in one session)."""
    global _fixedcore, _eventcore, _dedupecore, COMPILED  # the one switch, for measurements
    _fixedcore = _eventcore = _dedupecore = None  # type: ignore[assignment]
    COMPILED = False


def fixed_window_state(kind: WindowKind, config: WindowConfig) -> FixedWindowState:
    """The compiled fixed windows of ``kind`` where built, else the Python ones."""
    if _fixedcore is None:
        return FixedWindowState(kind, config)
    return CompiledFixedWindowState(kind, config)


def sliding_state(config: WindowConfig) -> SlidingState:
    """The compiled sliding windows where built, else the Python ones."""
    if _eventcore is None:
        return SlidingState(config)
    return CompiledSlidingState(config)


def session_state(config: WindowConfig) -> SessionState:
    """The compiled sessions where built, else the Python ones."""
    if _eventcore is None:
        return SessionState(config)
    return CompiledSessionState(config)


def txid_state(config: WindowConfig) -> TxIdState:
    """The compiled duplicate check where built, else the Python one."""
    if _dedupecore is None:
        return TxIdState(config)
    return CompiledTxIdState(config)
