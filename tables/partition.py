"""PartitionState: one source partition's windows of every kind, driven batch by batch."""

from __future__ import annotations

from collections.abc import Iterable

from .fixed import FixedWindowState
from .kindstate import KindState
from .outputs import LateEvent, Outputs, TransactionLike
from .sessions import SessionState
from .sliding import SlidingState
from .windows import WindowConfig, WindowKind

__all__ = ["KINDS", "PartitionState"]

#: Table order: tumbling first; it also keeps the partition's event and dead-letter counts.
KINDS: tuple[str, ...] = tuple(kind.value for kind in WindowKind)


class PartitionState:
    """Every window kind of one partition, plus its counters.

    Pure and synchronous: the agent feeds it batches of ``(offset, transaction)`` in offset
    order and sends what it returns; the batch report feeds it a whole topic the same way.
    """

    def __init__(self, partition: int, config: WindowConfig,
                 kinds: Iterable[str] = KINDS) -> None:
        self.partition = partition
        self.config = config
        wanted = set(kinds)
        self.tumbling = FixedWindowState(WindowKind.TUMBLING, config)
        self.hopping = FixedWindowState(WindowKind.HOPPING, config)
        self.sliding = SlidingState(config)
        self.sessions = SessionState(config)
        every: tuple[KindState[object], ...] = (  # type: ignore[assignment]
            self.tumbling, self.hopping, self.sliding, self.sessions)
        self.kinds: dict[str, KindState[object]] = {
            state.kind: state for state in every if state.kind in wanted}
        if WindowKind.TUMBLING.value not in self.kinds:
            message = "the tumbling kind is required: it carries the alert rule and counters"
            raise ValueError(message)
        self._states = tuple(self.kinds.values())
        self._others = tuple(state for state in self._states if state is not self.tumbling)

    @property
    def watermark(self) -> int:
        """The partition's watermark (the tumbling kind's copy; all copies agree while running)."""
        return self.tumbling.watermark.value

    @property
    def max_event_ms(self) -> int:
        """Highest event time seen in this partition."""
        return self.tumbling.watermark.max_event_ms

    def apply(self, records: Iterable[tuple[int, TransactionLike | None]],
              wall_ms: int | None = None, out: Outputs | None = None) -> Outputs:
        """Apply records in offset order, then close what the watermark passed.

        ``None`` in place of a transaction marks an invalid record (a dead letter): it is
        counted in its place in the offset order, so it never hides the records before it.
        """
        out = Outputs() if out is None else out
        batch = records if isinstance(records, list) else list(records)
        tumbling = self.tumbling
        before = tumbling.offset
        new_events = dead_letters = 0
        last_dead_letter = -1
        for offset, tx in batch:
            if offset > before:
                if tx is None:
                    dead_letters += 1
                    last_dead_letter = offset
                else:
                    new_events += 1
        # Kind by kind, tumbling last: it notes its watermark at every offset another kind
        # found late, which goes into that event's late-transactions record.
        late_kinds: dict[int, list[str]] = {}
        for state in self._others:
            for offset in state.apply_batch(batch, out):
                late_kinds.setdefault(offset, []).append(state.kind)
        marks = dict.fromkeys(late_kinds, tumbling.watermark.value)
        late_tumbling = tumbling.apply_batch(batch, out, marks)
        tumbling.add_counts({"events": new_events, "dead_letters": dead_letters},
                            last_dead_letter)
        if marks:
            self._late_events(batch, late_tumbling, late_kinds, marks, out)
        if wall_ms is not None:
            for state in self._states:
                state.mark_input(wall_ms)
        self.advance(None, out)
        return out

    @staticmethod
    def _late_events(batch: list[tuple[int, TransactionLike | None]], late_tumbling: list[int],
                     late_kinds: dict[int, list[str]], marks: dict[int, int],
                     out: Outputs) -> None:
        """One late-transactions record per late event, in offset order, kinds in table order."""
        tumbling_late = set(late_tumbling)
        for offset, tx in batch:
            if offset in marks and tx is not None:
                kinds = late_kinds.get(offset, [])
                if offset in tumbling_late:
                    kinds = [WindowKind.TUMBLING.value, *kinds]
                out.late.append(LateEvent(offset, tx, tuple(kinds), marks[offset]))

    def advance(self, wall_ms: int | None, out: Outputs | None = None) -> Outputs:
        """Close windows the watermark has passed; with ``wall_ms``, idle partitions move on."""
        out = Outputs() if out is None else out
        for state in self._states:
            state.advance(wall_ms, out)
        return out

    def counter(self, name: str) -> int:
        """A partition counter: ``events`` or ``dead_letters``."""
        return self.tumbling.counters.get(name, 0)

    def late_counts(self) -> dict[str, int]:
        """Late events per window kind."""
        return {kind: state.late for kind, state in self.kinds.items()}
