"""Shared helpers for the windowing-core tests: a transaction type, fixed times, a state store."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tables.dedupe import TXIDS, entry_fields
from tables.outputs import Outputs
from tables.partition import TABLES, PartitionState
from tables.windows import WindowConfig

__all__ = [
    "BASE",
    "CONFIG",
    "MIN",
    "SEC",
    "TXIDS",
    "Store",
    "Tx",
    "at",
    "batch",
    "by_customer",
    "collect",
    "fixed_rows",
    "ms",
    "restored",
    "session_rows",
    "sliding_rows",
    "snapshot",
    "state_of",
]

SEC = 1_000
MIN = 60 * SEC

#: Thursday 2026-03-12 14:00:00 UTC, the day every test lives in.
BASE = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)

#: Small sizes for tests: tumbling 5 min, hopping 10/2 min, sliding 10 min, gap 15 min,
#: lateness 5 s, idle timeout 30 s, retention 30 min, alert threshold 5000.00 PLN,
#: duplicate horizon 30 min.
CONFIG = WindowConfig(
    tumbling_ms=5 * MIN,
    hopping_size_ms=10 * MIN,
    hopping_step_ms=2 * MIN,
    sliding_ms=10 * MIN,
    session_gap_ms=15 * MIN,
    allowed_lateness_ms=5 * SEC,
    idle_timeout_ms=30 * SEC,
    retention_ms=30 * MIN,
    alert_threshold_cents=500_000,
    duplicate_horizon_ms=30 * MIN,
)


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction as the core sees it."""

    tx_id: str
    customer_id: int
    amount_cents: int
    event_time_ms: int


def ms(moment: datetime) -> int:
    """Epoch milliseconds of a timezone-aware datetime."""
    if moment.tzinfo is None:
        message = f"naive datetime {moment!r}"
        raise ValueError(message)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def at(clock: str) -> int:
    """Epoch ms of ``HH:MM[:SS[.fff]]`` on 2026-03-12 UTC."""
    parts = clock.split(":")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = float(parts[2]) if len(parts) > 2 else 0.0
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    moment = BASE.replace(hour=hours, minute=minutes, second=whole) + timedelta(
        milliseconds=millis)
    return ms(moment)


def batch(txs: Iterable[Tx], first_offset: int = 0) -> list[tuple[int, Tx]]:
    """Number transactions with consecutive offsets."""
    return list(enumerate(txs, start=first_offset))


Records = dict[str, list[tuple[bytes, bytes | None]]]


def snapshot(ps: PartitionState) -> Records:
    """``dump_dirty()`` of every table, the duplicate check's last (clears the dirty marks)."""
    return {name: list(state.dump_dirty()) for name, state in ps.tables.items()}


class Store:
    """What the changelogs hold: the last record per key, per table, built from flushes."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {name: {} for name in TABLES}

    def write(self, records: Mapping[str, Sequence[tuple[bytes, bytes | None]]]) -> None:
        """Write one flush (or part of one); a ``None`` value deletes the key."""
        for name, pairs in records.items():
            table = self.tables[name]
            for key, value in pairs:
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value

    def flush(self, ps: PartitionState) -> Records:
        """Write every table's dirty records of ``ps`` and return them."""
        records = snapshot(ps)
        self.write(records)
        return records

    def copy(self) -> Store:
        """An independent copy."""
        other = Store()
        other.tables = {kind: dict(table) for kind, table in self.tables.items()}
        return other


def restored(records: Store | Mapping[str, Sequence[tuple[bytes, bytes | None]]],
             config: WindowConfig = CONFIG, partition: int = 0) -> PartitionState:
    """A fresh PartitionState loaded from stored records, schedules rebuilt."""
    tables = records.tables if isinstance(records, Store) else records
    ps = PartitionState(partition, config)
    for name, state in ps.tables.items():
        pairs = tables.get(name, {})
        for key, value in (pairs.items() if isinstance(pairs, dict) else pairs):
            if value is not None:
                state.load(key, value)
        state.finish_load()
    return ps


def state_of(ps: PartitionState) -> dict[str, dict[str, object]]:
    """Everything observable about a partition's state, as plain comparable data."""
    txids = ps.txids
    # Entries that expired stay in memory until a flush lets them go: what is observable
    # is the entries within the horizon.
    live = {tx_id: entry_fields(entry) for tx_id, entry in sorted(txids.seen.items())
            if entry_fields(entry)[2] + txids.horizon > txids.watermark.value}
    every: dict[str, dict[str, object]] = {
        TXIDS: {
            "offset": txids.offset,
            "watermark": txids.watermark.to_list(),
            "counters": dict(txids.counters),
            "remembered": live,
        },
    }
    for kind, state in ps.kinds.items():
        customers = {  # a deep copy: some record forms share lists with the live state
            customer_id: copy.deepcopy(state._dump(customer))
            for customer_id, customer in sorted(state.customers.items())
        }
        every[kind] = {
            "offset": state.offset,
            "watermark": state.watermark.to_list(),
            "late": state.late,
            "counters": dict(state.counters),
            "customers": customers,
        }
    return every


def collect(outs: Iterable[Outputs]) -> Outputs:
    """Concatenate several batches' outputs."""
    total = Outputs()
    for out in outs:
        total.extend(out)
    return total


def fixed_rows(state: object,
               customer_id: int) -> list[tuple[int, int, int, int, int, int, bool, bool]]:
    """A customer's tumbling or hopping windows as ``(start, end, count, total, min, max,
    closed, alerted)``, sorted by start."""
    return [(start, end, w.count, w.total, w.min, w.max, w.closed, w.alerted)
            for start, end, w in state.windows_of(customer_id)]  # type: ignore[attr-defined]


def sliding_rows(state: object, customer_id: int) -> list[tuple[int, int, int, int, int, int]]:
    """A customer's retained sliding windows as ``(start, end, count, total, min, max)``."""
    return [(start, end, a.count, a.total, a.min, a.max)
            for start, end, a in state.windows_of(customer_id)]  # type: ignore[attr-defined]


def session_rows(state: object,
                 customer_id: int) -> list[tuple[int, int, int, int, int, int, bool]]:
    """A customer's sessions as ``(start, last, count, total, min, max, closed)``."""
    return [(s.start, s.last, s.count, s.total, s.min, s.max, s.closed)
            for s in state.sessions_of(customer_id)]  # type: ignore[attr-defined]


def by_customer(out: Outputs) -> Outputs:
    """``out`` with window results and sessions grouped by customer, each customer's own
    records in their original order (stable sort).

    After a restore the close schedules are rebuilt customer by customer, so windows of
    different customers that close at the same event time may come out in another order
    than in an uninterrupted run; each customer's own sequence is what consumers rely on.
    """
    return Outputs(alerts=list(out.alerts),
                   results=sorted(out.window_results(), key=lambda r: r.customer_id),
                   sessions=sorted(out.sessions, key=lambda s: s.customer_id),
                   late=list(out.late))
