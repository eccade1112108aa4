"""The batch report and the live-table check: the transactions topic through the same core.

Nothing here aggregates on its own: every record goes through
:class:`tables.partition.PartitionState` partition by partition in offset order, exactly as
the live pipeline feeds it, and the report only adds up the core's closed and open
tumbling windows across customers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from app.kafka.changelog import (
    end_offsets,
    load_kind,
    read_changelog,
    stream_topic,
    topic_partitions,
)
from app.kafka.security import KafkaConnection
from app.records.decode import Decoder
from app.records.money import format_cents
from app.records.outputs import money
from app.records.times import format_time
from app.records.transaction import (
    MAX_EVENT_TIME_MS,
    MIN_EVENT_TIME_MS,
    Transaction,
)
from tables.aggregate import Aggregate, average_cents
from tables.fixed import FixedWindowState
from tables.outputs import TransactionLike
from tables.partition import PartitionState
from tables.windows import WindowConfig, WindowKind

__all__ = [
    "FORMATS",
    "NEVER_LATE_MS",
    "CheckResult",
    "ReportRow",
    "WindowDifference",
    "WindowReport",
    "check_live",
    "compare_windows",
    "compute_report",
    "decode_records",
    "format_differences",
    "format_rows",
    "report_config",
]

#: Output formats of ``txstream report``.
FORMATS = ("table", "json", "csv")
#: An allowed lateness no accepted event can exceed: with it, nothing is ever late.
NEVER_LATE_MS = MAX_EVENT_TIME_MS - MIN_EVENT_TIME_MS
_TUMBLING = (WindowKind.TUMBLING.value,)

Progress = Callable[[int, int], None]


def report_config(live: WindowConfig, window_ms: int, *, include_late: bool) -> WindowConfig:
    """The core's configuration for a report with ``window_ms`` tumbling windows.

    Lateness is the live one, so a report drops exactly the events a live run with that
    window would drop; ``include_late`` makes nothing late. Retention is zero: a closed
    window is counted at once and leaves memory, so only open windows are held.
    """
    lateness = NEVER_LATE_MS if include_late else live.allowed_lateness_ms
    return dataclasses.replace(live, tumbling_ms=window_ms, allowed_lateness_ms=lateness,
                               retention_ms=0)


def decode_records(records: Iterable[Any], decoder: Decoder | None = None,
                   wall_ms: int | None = None) -> list[tuple[int, Transaction | None]]:
    """``(offset, transaction)`` of consumer records; None marks a rejected one (as live).

    The same decoding as the live pipeline's (``decoder`` with the live bound on event
    times ahead of the wall clock, taken at ``wall_ms``, now by default); what live
    processing would dead-letter is skipped and counted.
    """
    decoder = decoder if decoder is not None else _UNBOUNDED
    wall = int(time.time() * 1000) if wall_ms is None else wall_ms
    return decoder.decode(records, wall, _skip)


def _skip(record: Any, reason: str) -> None:
    """A rejected record: the report counts it (the core counts None as a dead letter)."""


#: Decoding without a bound on future event times.
_UNBOUNDED = Decoder(None)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One window of the report: all (or one) customers' transactions in ``[start, end)``."""

    start_ms: int
    end_ms: int
    count: int
    total: int

    @property
    def average(self) -> Decimal:
        """Average amount in PLN, rounded half-even to the cent."""
        return average_cents(self.total, self.count)


class WindowReport:
    """Count, total and average per tumbling window, computed by the windowing core.

    Feed it each partition's records in offset order with :meth:`apply`; :meth:`rows`
    then adds up the windows the core closed along the way and those still open.
    """

    def __init__(self, config: WindowConfig, *, customer: int | None = None) -> None:
        self.config = config
        self.customer = customer
        self.states: dict[int, PartitionState] = {}
        self._closed: dict[int, Aggregate] = {}

    def apply(self, partition: int,
              records: Iterable[tuple[int, TransactionLike | None]]) -> None:
        """Apply one partition's next records (offset order; None = invalid record)."""
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = PartitionState(partition, self.config, _TUMBLING)
        out = state.apply(records)
        state.release_memory()
        customer = self.customer
        for result in out.window_results():
            if customer is None or result.customer_id == customer:
                self._add(self._closed, result.start_ms,
                          Aggregate(result.count, result.total, result.min, result.max))

    @staticmethod
    def _add(sums: dict[int, Aggregate], start: int, aggregate: Aggregate) -> None:
        total = sums.get(start)
        if total is None:
            total = sums[start] = Aggregate()
        total.merge(aggregate)

    def rows(self, *, start_from: int | None = None,
             start_to: int | None = None) -> list[ReportRow]:
        """Windows with ``start_from <= start < start_to``, sorted by start."""
        sums = {start: Aggregate(*agg.to_list()) for start, agg in self._closed.items()}
        customer = self.customer
        for state in self.states.values():
            tumbling = state.tumbling
            for customer_id in tumbling.customers:
                if customer is not None and customer_id != customer:
                    continue
                for start, _, window in tumbling.windows_of(customer_id):
                    if not window.closed:
                        self._add(sums, start, window)
        size = self.config.tumbling_ms
        return [ReportRow(start, start + size, agg.count, agg.total)
                for start, agg in sorted(sums.items())
                if (start_from is None or start >= start_from)
                and (start_to is None or start < start_to)]

    @property
    def events(self) -> int:
        """Valid transactions applied."""
        return sum(state.counter("events") for state in self.states.values())

    @property
    def invalid(self) -> int:
        """Records that did not parse or validate, or repeat a tx_id with other content
        (skipped; live sends them to the DLQ)."""
        return sum(state.counter("dead_letters") for state in self.states.values())

    @property
    def duplicates(self) -> int:
        """Records skipped as duplicates of an earlier one (same tx_id, same content)."""
        return sum(state.counter("duplicates") for state in self.states.values())

    @property
    def conflicts(self) -> int:
        """Records that repeat an earlier tx_id with other content (among :attr:`invalid`)."""
        return sum(state.counter("conflicts") for state in self.states.values())

    @property
    def late(self) -> int:
        """Valid transactions not counted because their window had closed."""
        return sum(state.tumbling.late for state in self.states.values())


async def compute_report(kafka: KafkaConnection, topic: str, config: WindowConfig, *,
                         customer: int | None = None, decoder: Decoder | None = None,
                         on_progress: Progress | None = None) -> WindowReport:
    """Stream ``topic`` from the start through a :class:`WindowReport`.

    Raises LookupError if the topic does not exist.
    """
    partitions = (await topic_partitions(kafka, [topic])).get(topic)
    if partitions is None:
        raise LookupError(f"topic {topic!r} does not exist")
    stops = await end_offsets(kafka, topic, partitions)
    total = sum(stops.values())
    report = WindowReport(config, customer=customer)
    done = 0
    async for partition, records in stream_topic(kafka, topic, stops):
        report.apply(partition, decode_records(records, decoder))
        done += len(records)
        if on_progress is not None:
            on_progress(done, total)
    if on_progress is not None:
        on_progress(total, total)
    return report


# -- the check --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowDifference:
    """One customer's window whose live aggregate differs from the recomputed one."""

    customer_id: int
    start_ms: int
    end_ms: int
    live: Aggregate | None
    recomputed: Aggregate | None


@dataclass
class CheckResult:
    """What ``report --check`` found."""

    differences: list[WindowDifference]
    #: Windows compared (live or recomputed).
    windows: int = 0
    #: Source records the live tables have applied (the recomputation read as many).
    applied: int = 0
    #: Source records after that, not yet applied by the live workers.
    behind: int = 0
    #: Changelog records of flushes still being written, left out.
    unfinished: int = 0
    #: Changelog records txstream did not write (or damaged ones), skipped.
    skipped: int = 0


def compare_windows(live: FixedWindowState,
                    recomputed: FixedWindowState) -> tuple[list[WindowDifference], int]:
    """Differences between two states of one partition, and how many windows were compared.

    Windows the live table has already let go (``end + retention`` at or before its
    watermark) are not compared: the live watermark may be ahead of the recomputed one
    after the idle timeout moved it on with the wall clock.
    """
    size = recomputed.size
    horizon = live.watermark.value - live.config.retention_ms
    differences: list[WindowDifference] = []
    compared = 0
    for customer in sorted(live.customers.keys() | recomputed.customers.keys()):
        mine = {start: w for start, _, w in live.windows_of(customer) if start + size > horizon}
        theirs = {start: w for start, _, w in recomputed.windows_of(customer)
                  if start + size > horizon}
        for start in sorted(mine.keys() | theirs.keys()):
            compared += 1
            a, b = mine.get(start), theirs.get(start)
            if a is None or b is None or a.to_list() != b.to_list():
                differences.append(WindowDifference(
                    customer, start, start + size,
                    None if a is None else Aggregate(*a.to_list()),
                    None if b is None else Aggregate(*b.to_list())))
    return differences, compared


async def check_live(kafka: KafkaConnection, source: str, changelog: str,
                     config: WindowConfig, *, decoder: Decoder | None = None,
                     on_progress: Progress | None = None) -> CheckResult:
    """Compare the live tumbling table (from its changelog) with a recomputation.

    Each partition is recomputed from the start of ``source`` up to the offset its live
    table says it has applied, so a live worker that is behind (or in the middle of a
    flush) is compared at the same point. Raises LookupError if a topic is missing.
    """
    parts = await read_changelog(kafka, changelog)
    if parts is None:
        raise LookupError(f"no live tables: topic {changelog!r} does not exist "
                          "(has a worker of this state version run?)")
    partitions = (await topic_partitions(kafka, [source])).get(source)
    if partitions is None:
        raise LookupError(f"topic {source!r} does not exist")
    ends = await end_offsets(kafka, source, partitions)
    lives: dict[int, FixedWindowState] = {}
    stops: dict[int, int] = {}
    result = CheckResult([])
    for p in range(partitions):
        live = lives[p] = FixedWindowState(WindowKind.TUMBLING, config)
        part = parts.get(p)
        if part is not None:
            result.skipped += len(part.records) - load_kind(live, part)
            result.unfinished += part.unfinished
        stops[p] = min(live.offset + 1, ends[p])
    result.applied = sum(stops.values())
    result.behind = sum(ends.values()) - result.applied
    states = {p: PartitionState(p, config, _TUMBLING) for p in range(partitions)}
    done = 0
    async for partition, records in stream_topic(kafka, source, stops):
        state = states[partition]
        state.apply(decode_records(records, decoder))
        state.release_memory()
        done += len(records)
        if on_progress is not None:
            on_progress(done, result.applied)
    for p in range(partitions):
        differences, compared = compare_windows(lives[p], states[p].tumbling)
        result.differences.extend(differences)
        result.windows += compared
    result.differences.sort(key=lambda d: (d.customer_id, d.start_ms))
    return result


# -- formatting -------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max([len(headers[i]), *(len(row[i]) for row in rows)]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        text = "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                         for i, cell in enumerate(cells))
        return text.rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)]) + "\n"


def _csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def format_rows(rows: Sequence[ReportRow], fmt: str) -> str:
    """The report as ``table`` (with an ``all`` line), ``json`` or ``csv`` text."""
    if fmt == "json":
        return orjson.dumps([
            {"start": format_time(r.start_ms), "end": format_time(r.end_ms), "count": r.count,
             "total": money(r.total), "average": float(r.average)}
            for r in rows]).decode() + "\n"
    if fmt == "csv":
        return _csv(["start", "end", "count", "total", "average"],
                    [[format_time(r.start_ms), format_time(r.end_ms), r.count,
                      format_cents(r.total), str(r.average)] for r in rows])
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    cells = [[format_time(r.start_ms), format_time(r.end_ms), str(r.count),
              format_cents(r.total), str(r.average)] for r in rows]
    count = sum(r.count for r in rows)
    total = sum(r.total for r in rows)
    average = str(average_cents(total, count)) if count else "-"
    cells.append(["all", "", str(count), format_cents(total), average])
    return _table(["start", "end", "count", "total", "average"], cells, {2, 3, 4})


def _aggregate_json(agg: Aggregate | None) -> dict[str, Any] | None:
    if agg is None:
        return None
    return {"count": agg.count, "total": money(agg.total), "min": money(agg.min),
            "max": money(agg.max)}


def _aggregate_cell(agg: Aggregate | None, other: Aggregate | None) -> str:
    if agg is None:
        return "-"
    text = f"{agg.count} / {format_cents(agg.total)}"
    if other is not None and (agg.min, agg.max) != (other.min, other.max):
        text += f" (min {format_cents(agg.min)}, max {format_cents(agg.max)})"
    return text


def format_differences(differences: Sequence[WindowDifference], fmt: str) -> str:
    """Check differences as ``table``, ``json`` or ``csv`` text (count / total per side)."""
    if fmt == "json":
        return orjson.dumps([
            {"customer_id": d.customer_id, "start": format_time(d.start_ms),
             "end": format_time(d.end_ms), "live": _aggregate_json(d.live),
             "recomputed": _aggregate_json(d.recomputed)}
            for d in differences]).decode() + "\n"
    if fmt == "csv":
        def pair(agg: Aggregate | None) -> list[Any]:
            return ["", ""] if agg is None else [agg.count, format_cents(agg.total)]
        return _csv(["customer_id", "start", "end", "live_count", "live_total",
                     "recomputed_count", "recomputed_total"],
                    [[d.customer_id, format_time(d.start_ms), format_time(d.end_ms),
                      *pair(d.live), *pair(d.recomputed)] for d in differences])
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if not differences:
        return ""
    return _table(["customer", "start", "end", "live count / total",
                   "recomputed count / total"],
                  [[str(d.customer_id), format_time(d.start_ms), format_time(d.end_ms),
                    _aggregate_cell(d.live, d.recomputed),
                    _aggregate_cell(d.recomputed, d.live)] for d in differences], {0})
