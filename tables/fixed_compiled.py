"""Tumbling and hopping windows with each customer's entries in a C array, when compiled.

:class:`CompiledFixedWindowState` is :class:`~tables.fixed.FixedWindowState` with its
batch loop, closing and expiry in ``tables/_fixedcore.pyx``: the same results, records
and views, measured about three times faster on the windows' work at steady state
(README, Performance). :func:`fixed_window_state` gives it where the extension was built
and the Python class otherwise, so a machine without a C++ compiler runs the same code.
"""

from __future__ import annotations

from typing import Any

from .fixed import FixedWindowState
from .kindstate import Records
from .outputs import Outputs
from .validate import CorruptRecord
from .windows import WindowConfig, WindowKind

try:
    from . import _fixedcore
except ImportError:  # installed without a C++ compiler: the Python class does the work
    _fixedcore = None  # type: ignore[assignment]

__all__ = ["COMPILED", "CompiledFixedWindowState", "fixed_window_state"]

#: Whether the compiled window core is in use.
COMPILED = _fixedcore is not None


class CompiledFixedWindowState(FixedWindowState):
    """:class:`FixedWindowState` whose customers are ``_fixedcore.WindowList`` objects.

    A ``WindowList`` answers what the views, the dashboard and the report ask of a
    ``CustomerWindows`` (``offset``, ``closed_before``, ``is_closed``, ``windows`` as a
    copy); close and expiry schedules hold ``(customer id, WindowList)``.
    """

    def apply_batch(self, records: Records, out: Outputs,
                    marks: dict[int, int] | None = None) -> list[int]:
        """:meth:`FixedWindowState.apply_batch`, compiled."""
        late: list[int] = _fixedcore.apply_batch(self, records, out, marks)
        return late

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

    def _dump(self, state: Any) -> Any:
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


def fixed_window_state(kind: WindowKind, config: WindowConfig) -> FixedWindowState:
    """The compiled fixed windows of ``kind`` where built, else the Python ones."""
    if _fixedcore is None:
        return FixedWindowState(kind, config)
    return CompiledFixedWindowState(kind, config)
