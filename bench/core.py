"""The pipeline's CPU work without Kafka: parse, apply, encode and append outputs, dump state.

Runs the benchmark's data set through the same functions the worker calls, in the same
batch and flush rhythm, and prints microseconds per event for each stage. It isolates the
Python work from the broker, so a change to the core shows up in seconds:

    python -m bench.core [--events 200000] [--kinds tumbling,hopping,sliding,session]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from agents.batches import RecordBatches
from agents.emit import append_outputs
from app.gctuning import tune_gc
from app.kafka.compression import CODEC_NAMES, BatchCompression, batch_compression
from app.records.transaction import Transaction, parse_transaction
from app.settings import Settings, window_config
from app.topics import TopicNames
from tables import compiled
from tables.dedupe import entry_fields
from tables.outputs import Outputs
from tables.partition import KINDS, PartitionState

from .load import LoadSpec, make_records

__all__ = ["main"]

PARTITIONS = 4


def _built_bytes(batches: RecordBatches) -> int:
    """Build (and compress) every batch as the producer does before sending; their bytes."""
    return sum(len(builder._build()) for _, _, builder, _ in batches.take())


def _send(out: Outputs, partition: int, topics: TopicNames,
          compression: BatchCompression) -> tuple[int, int]:
    """Encode, append and build the outputs as the worker does (the batches are dropped):
    the number of output records and the bytes built."""
    batches = RecordBatches(producer=None, compression=compression)
    append_outputs(batches, topics, partition, out)
    return (len(out.alerts) + sum(len(run) for run in out.runs) + len(out.results)
            + len(out.sessions) + len(out.late)), _built_bytes(batches)


def txids_memory(states: Iterable[PartitionState]) -> tuple[int, int]:
    """tx_ids the duplicate checks hold, and the bytes of their ids, entries, dicts and
    segment lists (``sys.getsizeof``: the objects themselves, not the allocator's)."""
    held = size = 0
    for state in states:
        txids = state.txids
        held += len(txids.seen)
        size += sys.getsizeof(txids.seen) + sys.getsizeof(txids.older)
        size += sum(sys.getsizeof(tx_id) + sys.getsizeof(entry)
                    for tx_id, entry in txids.seen.items())
        # The release schedule: the tx_ids of each flush's segment, and the next one's.
        segments = [tx_ids for bucket in txids._segments.buckets.values()
                    for _, tx_ids in bucket]
        size += sum(sys.getsizeof(tx_ids) for tx_ids in segments)
        size += sys.getsizeof(txids.unwritten)
    return held, size


def _time_kinds(states: dict[int, PartitionState], spent: dict[str, float],
                clock: Callable[[], float]) -> None:
    """Wrap the duplicate check's and each kind's ``apply_batch`` and ``advance`` so their
    time adds to ``spent``."""

    def timed(method: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = clock()
            try:
                return method(*args, **kwargs)
            finally:
                spent[stage] += clock() - begin
        return wrapper

    for state in states.values():
        # The duplicate check first, as the core runs it.
        state.txids.apply_batch = timed(  # type: ignore[method-assign]
            state.txids.apply_batch, "  txids check")
        for kind, kind_state in state.kinds.items():
            kind_state.apply_batch = timed(  # type: ignore[method-assign]
                kind_state.apply_batch, f"  {kind} apply")
            kind_state.advance = timed(  # type: ignore[method-assign]
                kind_state.advance, f"  {kind} close")


def _rss_mb() -> float:
    """This process's resident set size now, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(events: int, customers: int, kinds: list[str], batch: int, flush_every: int,
        hours: float, by_kind: bool = False, cpu: bool = False,
        compression: str | None = None) -> None:
    """Time each stage over the data set and print the figures."""
    records = make_records(LoadSpec(events=events, customers=customers,
                                    span_ms=int(hours * 3_600_000)))
    by_partition: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for key, value, _ in records:
        partition = int(key) % PARTITIONS
        by_partition[partition].append((len(by_partition[partition]), key, value))
    settings = Settings.load()
    codec = batch_compression(compression or settings.compression)
    config = window_config(settings)
    topics = TopicNames(settings.topic_prefix)
    states = {p: PartitionState(p, config, kinds) for p in by_partition}
    tune_gc()  # as the worker does at start
    rss_before = _rss_mb()
    spent: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    # CPU time of this process: on a shared machine, wall time also counts waiting for a core.
    clock: Callable[[], float] = time.process_time if cpu else time.perf_counter
    kind_spent: dict[str, float] = defaultdict(float)
    state_bytes: dict[str, int] = defaultdict(int)
    if by_kind:
        _time_kinds(states, kind_spent, clock)
    since_flush = 0
    # Round-robin over partitions one batch at a time, as a consumer's fetches deliver them.
    cursors = dict.fromkeys(by_partition, 0)
    while cursors:
        for partition in list(cursors):
            start = cursors[partition]
            chunk = by_partition[partition][start:start + batch]
            if not chunk:
                del cursors[partition]
                continue
            cursors[partition] = start + len(chunk)
            t0 = clock()
            parsed: list[tuple[int, Transaction | None]] = [
                (offset, parse_transaction(value, key)) for offset, key, value in chunk]
            t1 = clock()
            out = states[partition].apply(parsed)
            t2 = clock()
            sent, built = _send(out, partition, topics, codec)
            counts["outputs"] += sent
            counts["output bytes"] += built
            t3 = clock()
            spent["parse"] += t1 - t0
            spent["apply"] += t2 - t1
            spent["send"] += t3 - t2
            since_flush += len(chunk)
            if since_flush >= flush_every:
                since_flush = 0
                t4 = clock()
                changelogs = RecordBatches(producer=None, compression=codec)
                for partition_state in states.values():
                    for name, table_state in partition_state.tables.items():
                        dumped = table_state.dump_dirty()
                        changelogs.to(name, partition_state.partition).extend(
                            (key, value, None) for key, value in dumped)
                        counts["state records"] += len(dumped)
                        state_bytes[name] += sum(len(value) for _, value in dumped
                                                 if value is not None)
                counts["state bytes"] += _built_bytes(changelogs)
                spent["dump"] += clock() - t4
    total = sum(spent.values())
    print(f"{events:,} events over {hours:g} h, {customers:,} customers, kinds {','.join(kinds)}, "
          f"batch {batch}, flush every {flush_every:,} events, "
          f"{'CPU' if cpu else 'wall'} time")
    for stage, seconds in spent.items():
        print(f"  {stage:<7} {seconds / events * 1e6:7.2f} us/event")
        if stage == "apply":
            for part, part_seconds in kind_spent.items():
                print(f"  {part:<18} {part_seconds / events * 1e6:7.2f} us/event")
    print(f"  {'total':<7} {total / events * 1e6:7.2f} us/event  ({events / total:,.0f} events/s)")
    print(f"  outputs {counts['outputs']:,}, state records {counts['state records']:,} "
          f"({sum(state_bytes.values()) / 1e6:,.1f} MB: "
          + ", ".join(f"{name} {size / 1e6:,.1f}" for name, size in state_bytes.items()) + ")")
    print(f"  built batches ({codec.name}): outputs {counts['output bytes'] / events:,.0f} "
          f"bytes/event, changelogs {counts['state bytes'] / events:,.0f} bytes/event")
    held, held_bytes = txids_memory(states.values())
    within = sum(1 for state in states.values() for entry in state.txids.seen.values()
                 if entry_fields(entry)[2] + state.txids.horizon > state.txids.watermark.value)
    print(f"  duplicate check: {held:,} tx_ids held at the end ({within:,} within the horizon; "
          f"the rest leave with their flush's segment), {held_bytes / 1e6:.1f} MB, "
          f"{held_bytes / max(held, 1):.0f} bytes each (id, entry, dict slot, segment list)")
    print(f"  resident memory grew {_rss_mb() - rss_before:,.0f} MB while applying (the states "
          f"and what the allocators kept; the input records were in memory before); window "
          f"kinds {'compiled' if compiled.COMPILED else 'in Python'}")
    print("command: python -m bench.core " + " ".join(sys.argv[1:]))


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=3.0, help="event-time span of the data")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--batch", type=int, default=2_000, help="records per applied batch")
    parser.add_argument("--flush-every", type=int, default=40_000,
                        help="events between state dumps (a flush interval at 40k events/s)")
    parser.add_argument("--by-kind", action="store_true",
                        help="also time each kind's apply and close within the apply stage")
    parser.add_argument("--python-kinds", action="store_true",
                        help="use the Python window kinds even where the compiled ones "
                             "were built (to compare the two)")
    parser.add_argument("--cpu", action="store_true",
                        help="time with this process's CPU time instead of the wall clock "
                             "(steadier on a shared machine)")
    parser.add_argument("--compression", choices=CODEC_NAMES,
                        help="how the send and dump stages compress the batches they build "
                             "(default: TXSTREAM_COMPRESSION's value, as the worker's)")
    args = parser.parse_args(argv)
    if args.python_kinds:
        compiled.use_python_kinds()
    run(args.events, args.customers, args.kinds.split(","), args.batch, args.flush_every,
        args.hours, args.by_kind, args.cpu, args.compression)


if __name__ == "__main__":
    main()
