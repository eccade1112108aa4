"""PartitionState: one source partition's duplicate check and windows of every kind."""

from __future__ import annotations

from collections.abc import Iterable

from .compiled import fixed_window_state, session_state, sliding_state, txid_state
from .dedupe import TXIDS
from .fixed import FixedWindowState
from .kindstate import KindState, Records
from .outputs import LateEvent, Outputs, TransactionLike
from .sessions import SessionState
from .sliding import SlidingState
from .tablestate import TableState
from .windows import WindowConfig, WindowKind

__all__ = ["KINDS", "TABLES", "PartitionState"]

#: Table order: tumbling first; it also keeps the partition's event and dead-letter counts.
KINDS: tuple[str, ...] = tuple(kind.value for kind in WindowKind)
#: Every table of a partition's state: the window kinds, then the duplicate check's.
TABLES: tuple[str, ...] = (*KINDS, TXIDS)


class PartitionState:
    """The duplicate check and every window kind of one partition, plus its counters.

    Pure and synchronous: the agent feeds it batches of ``(offset, transaction)`` in offset
    order and sends what it returns; the batch report feeds it a whole topic the same way.
    Each batch goes through the duplicate check first (:class:`~tables.dedupe.TxIdState`),
    and what passes through the window kinds.
    """

    def __init__(self, partition: int, config: WindowConfig,
                 kinds: Iterable[str] = KINDS) -> None:
        self.partition = partition
        self.config = config
        wanted = set(kinds)
        self.tumbling: FixedWindowState = fixed_window_state(WindowKind.TUMBLING, config)
        self.hopping: FixedWindowState = fixed_window_state(WindowKind.HOPPING, config)
        self.sliding: SlidingState = sliding_state(config)
        self.sessions: SessionState = session_state(config)
        every: tuple[KindState[object], ...] = (  # type: ignore[assignment]
            self.tumbling, self.hopping, self.sliding, self.sessions)
        self.kinds: dict[str, KindState[object]] = {
            state.kind: state for state in every if state.kind in wanted}
        if WindowKind.TUMBLING.value not in self.kinds:
            message = "the tumbling kind is required: it carries the alert rule and counters"
            raise ValueError(message)
        self._states = tuple(self.kinds.values())
        self._others = tuple(state for state in self._states if state is not self.tumbling)
        self.txids = txid_state(config)
        #: Every table's state by table name, the duplicate check's last (it is written
        #: last in a flush, see :class:`~tables.dedupe.TxIdState`).
        self.tables: dict[str, TableState] = {**self.kinds, TXIDS: self.txids}

    @property
    def watermark(self) -> int:
        """The partition's watermark (the tumbling kind's copy; all copies agree while running)."""
        return self.tumbling.watermark.value

    @property
    def max_event_ms(self) -> int:
        """Highest event time seen in this partition."""
        return self.tumbling.watermark.max_event_ms

    @property
    def applied_offset(self) -> int:
        """The highest source offset any of this partition's tables has taken in (-1: none)."""
        return max(table.offset for table in self.tables.values())

    def apply(self, records: Iterable[tuple[int, TransactionLike | None]],
              wall_ms: int | None = None, out: Outputs | None = None) -> Outputs:
        """Check records for duplicates and apply them in offset order, then close what
        the watermark passed.

        ``None`` in place of a transaction marks an invalid record (a dead letter): it is
        counted in its place in the offset order, so it never hides the records before it.
        A duplicate is left out; a conflicting one becomes a dead letter and goes into
        ``out.conflicts`` (see :class:`~tables.dedupe.TxIdState`).
        """
        out = Outputs() if out is None else out
        records = records if isinstance(records, list) else list(records)
        batch = self.txids.apply_batch(records, out)
        tumbling = self.tumbling
        before = tumbling.offset
        new_events = dead_letters = 0
        for offset, tx in batch:
            if offset > before:
                if tx is None:
                    dead_letters += 1
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
        # Every kind's offset passes the whole batch, invalid records and duplicates too.
        last = records[-1][0] if records else -1
        tumbling.add_counts({"events": new_events, "dead_letters": dead_letters}, last)
        for state in self._others:
            state.skip_to(last)
        if marks:
            self._late_events(batch, late_tumbling, late_kinds, marks, out)
        if wall_ms is not None:
            for table in self.tables.values():
                table.mark_input(wall_ms)
        self.advance(None, out)
        return out

    @staticmethod
    def _late_events(batch: Records, late_tumbling: list[int],
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
        for table in self.tables.values():
            table.advance(wall_ms, out)
        return out

    def release_memory(self) -> None:
        """For a state that is never written (the batch report): forget expired tx_ids now."""
        self.txids.release_memory()

    def counter(self, name: str) -> int:
        """A partition counter: ``events`` and ``dead_letters`` (invalid records and
        conflicting duplicates), ``duplicates`` (skipped) and ``conflicts``."""
        if name in ("duplicates", "conflicts"):
            return self.txids.counters.get(name, 0)
        return self.tumbling.counters.get(name, 0)

    def late_counts(self) -> dict[str, int]:
        """Late events per window kind."""
        return {kind: state.late for kind, state in self.kinds.items()}
