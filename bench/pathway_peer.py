"""A peer: Pathway doing the per-customer 5-minute tumbling sum (run as its own process).

``python -m bench.pathway_peer --bootstrap H:P --topic T --events N --output O
--group G`` reads ``T`` from the beginning in streaming mode (its static mode read short
of the end on the embedded broker, BROKER.md fact 2), sums ``amount`` per customer in
5-minute event-time windows (the record's Kafka timestamp, which is the event time)
with ``exactly_once_behavior(shift=5 s)`` (one final result per window, 5 s of
lateness), and writes each result to ``O``.

Pathway runs until stopped, and tells nothing per record, so the process times itself
from two subscriptions: a running count of input rows (one update per mini-batch) and
every window result. ``first``/``first_events`` are the first count seen, ``last`` the
time of the last window result once all ``N`` rows are in and no result has come for
``--quiet`` seconds; then it prints one JSON line and exits. Its window results and the
rows it read are counted: Pathway's time is one watermark for the whole operator, so on
a backlog read from several partitions at once much of the data is dropped as late
(measure it on a one-partition copy of the topic, where its semantics match txstream's
per-partition watermark). The last windows of the data never close (no later data).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

import orjson

from .procs import peak_rss_kb

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the pipeline until its results stop; print its timings as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.pathway_peer")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--quiet", type=float, default=3.0,
                        help="seconds without a new window result that mean it is done")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    import pathway as pw

    started_wall = time.time()
    # The subscription callbacks get an argument named ``time``.
    wall, cpu = time.time, time.process_time
    lock = threading.Lock()
    progress: dict[str, Any] = {"rows": 0, "t0": None, "e0": None, "cpu0": None,
                                "results": 0, "last_result": None, "cpu_last": None}

    class Transaction(pw.Schema):
        customer_id: int
        amount: float

    settings = {"bootstrap.servers": args.bootstrap, "group.id": args.group,
                "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
                "fetch.wait.max.ms": "100", "enable.idempotence": "false"}
    source = pw.io.kafka.read(settings, topic=args.topic, schema=Transaction, format="json",
                              autocommit_duration_ms=100, with_metadata=True)
    events = source.select(
        customer_id=pw.this.customer_id, amount=pw.this.amount,
        t=pw.unwrap(pw.this._metadata["timestamp_millis"].as_int()))
    windows = events.windowby(
        pw.this.t, window=pw.temporal.tumbling(duration=300_000),
        instance=pw.this.customer_id,
        behavior=pw.temporal.exactly_once_behavior(shift=5_000),
    ).reduce(customer_id=pw.this._pw_instance, start=pw.this._pw_window_start,
             total=pw.reducers.sum(pw.this.amount))
    pw.io.kafka.write(windows, {"bootstrap.servers": args.bootstrap,
                                "enable.idempotence": "false"},
                      topic_name=args.output, format="json")
    count = events.reduce(n=pw.reducers.count())  # type: ignore[no-untyped-call]

    def on_count(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if not is_addition:
            return
        with lock:
            progress["rows"] = row["n"]
            if progress["t0"] is None:
                progress["t0"], progress["e0"] = wall(), row["n"]
                progress["cpu0"] = cpu()

    def on_result(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        if is_addition:
            with lock:
                progress["results"] += 1
                progress["last_result"] = wall()
                progress["cpu_last"] = cpu()

    pw.io.subscribe(count, on_change=on_count)
    pw.io.subscribe(windows, on_change=on_result)

    def watch() -> None:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with lock:
                last = progress["last_result"]
                done = (progress["rows"] >= args.events and last is not None
                        and time.time() - last >= args.quiet)
            if done:
                break
        with lock:
            cpu0, cpu1 = progress["cpu0"], progress["cpu_last"]
            result = {
                "processed": progress["rows"],
                "started": started_wall,
                "first": progress["t0"],
                "last": progress["last_result"],
                "first_events": progress["e0"] or 0,
                "cpu_seconds": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
                "stopped": time.time(),
                "peak_rss_kb": peak_rss_kb(),
                "window_results": progress["results"],
            }
        sys.stdout.write("BENCH-RESULT " + orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
        os._exit(0)  # Pathway's streaming run does not return

    threading.Thread(target=watch, daemon=True).start()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


if __name__ == "__main__":
    main()
