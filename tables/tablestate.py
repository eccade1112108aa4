"""TableState: what every table of a partition shares: watermark, offset, counters, ~partition."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from .outputs import Outputs
from .validate import require, require_int, require_int_rows
from .watermark import Watermark
from .windows import WindowConfig

__all__ = ["META_KEY", "TableState"]

#: Key of the per-partition record in every table. Customer keys are decimal digits and
#: tx_id keys start with ``tx:``, so it cannot collide; it is written last in every flush.
META_KEY = b"~partition"


class TableState(ABC):
    """One table's state of one source partition: a deterministic state machine of its own.

    Each table keeps its own copy of the watermark and the highest source offset it has
    taken into account, so its records describe a state that is consistent on its own:
    after a crash it resumes from exactly the offset its own partition record names.
    """

    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self.watermark = Watermark(config.allowed_lateness_ms, config.idle_timeout_ms)
        #: Highest source offset this table has taken into account in this partition.
        self.offset = -1
        self.counters: dict[str, int] = {}
        self._meta_dirty = False

    def add_counts(self, counts: dict[str, int], last_offset: int) -> None:
        """Add partition counters for records up to ``last_offset``."""
        counters = self.counters
        for name, number in counts.items():
            if number:
                counters[name] = counters.get(name, 0) + number
                self._meta_dirty = True
        self.skip_to(last_offset)

    def skip_to(self, last_offset: int) -> None:
        """Take every source record up to ``last_offset`` as done (applied or not for it).

        A batch's invalid records and duplicates change no window, but every table's
        offset passes them: a re-delivered one is then skipped by the offset alone.
        """
        if last_offset > self.offset:
            self.offset = last_offset
            self._meta_dirty = True

    def mark_input(self, wall_ms: int) -> None:
        """Note that a batch arrived at ``wall_ms`` (the idle clock restarts)."""
        self.watermark.mark_input(wall_ms)

    def _on_idle(self, wall_ms: int | None) -> None:
        """Move the watermark on with the wall clock if the partition has been quiet."""
        if wall_ms is not None and self.watermark.on_idle(wall_ms):
            self._meta_dirty = True

    @abstractmethod
    def advance(self, wall_ms: int | None, out: Outputs) -> None:
        """Act on the watermark (after idling, if ``wall_ms`` says so)."""

    @abstractmethod
    def dump_dirty(self) -> Sequence[tuple[bytes, bytes | None]]:
        """Every changed record (``None``: deleted), then the partition record; clears marks."""

    @abstractmethod
    def load(self, key: bytes, value: bytes) -> None:
        """Restore one record written by :meth:`dump_dirty` (call :meth:`finish_load` after)."""

    @abstractmethod
    def finish_load(self) -> None:
        """Rebuild what is derived from the loaded records (schedules)."""

    def _dump_meta(self) -> dict[str, Any]:
        return {"o": self.offset, "wm": self.watermark.to_list(), "c": self.counters}

    def _load_meta(self, data: dict[str, Any]) -> None:
        """Take the partition record's fields; CorruptRecord (and nothing taken) if one is off."""
        offset = require_int(data.get("o"), "the applied offset")
        watermark = require_int_rows([data.get("wm")], 2, "the watermark")[0]
        counters = data.get("c", {})
        require(type(counters) is dict and all(type(n) is int for n in counters.values()),
                "the counters are not integers by name")
        self.offset = max(self.offset, offset)
        self.watermark.restore(watermark)
        self.counters = dict(counters)
