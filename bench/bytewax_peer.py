"""A peer: Bytewax doing the per-customer 5-minute tumbling sum (run as its own process).

``python -m bench.bytewax_peer --bootstrap H:P --topic T --events N --output O`` reads
``T`` from the beginning to its end (``tail=False``) in one worker, sums ``amount`` per
customer (the record key) in 5-minute event-time windows aligned to the epoch, with
5 s of lateness (``EventClock(wait_for_system_duration=5 s)``), and sends each window's
final sum to ``O``. It prints one JSON line with its own timings: ``first``/``last`` are
when the first and the ``N``-th record had been folded into a window (or found late),
as txstream's and Quix's figures are; the window results and late records are counted.

Semantics differ from txstream's in one way that matters: Bytewax keeps the event-time
clock per key (customer), and it advances with the wall clock since that key's newest
event, so lateness is judged per customer; at the end of the input every open window
closes. It keeps no durable state here and commits no offsets.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .procs import peak_rss_kb

__all__ = ["main"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(value: dict[str, Any]) -> datetime:
    """The value's ISO 8601 ``event_time`` as an aware UTC datetime."""
    moment = datetime.fromisoformat(value["event_time"])
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    """Run the dataflow to the end of the topic; print its timings as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.bytewax_peer")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)

    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSinkMessage
    from bytewax.connectors.kafka import operators as kop
    from bytewax.dataflow import Dataflow
    from bytewax.operators import windowing as win
    from bytewax.testing import run_main

    started_wall = time.time()
    target = args.events
    progress: dict[str, Any] = {"n": 0, "t0": None, "cpu0": None, "t1": None, "cpu1": None,
                                "late": 0, "results": 0}

    def processed() -> None:
        progress["n"] += 1
        n = progress["n"]
        if n == 1:
            progress["t0"] = time.time()
            progress["cpu0"] = time.process_time()
        if n == target:
            progress["t1"] = time.time()
            progress["cpu1"] = time.process_time()

    def parse(message: Any) -> tuple[str, dict[str, Any]]:
        return message.key.decode(), orjson.loads(message.value)

    def fold(total: float, value: dict[str, Any]) -> float:
        processed()
        return total + float(value["amount"])

    def late(item: tuple[str, tuple[int, dict[str, Any]]]) -> None:
        progress["late"] += 1
        processed()

    def encode(item: tuple[str, tuple[int, float]]) -> KafkaSinkMessage[bytes, bytes]:
        customer, (window_id, total) = item
        progress["results"] += 1
        start = _EPOCH + window_id * timedelta(minutes=5)
        value = orjson.dumps({"customer_id": int(customer), "start": start.isoformat(),
                              "total": round(total, 2)})
        return KafkaSinkMessage(customer.encode(), value)

    flow = Dataflow("bench-bytewax")
    source = kop.input("in", flow, brokers=[args.bootstrap], topics=[args.topic], tail=False,
                       batch_size=5000,
                       add_config={"session.timeout.ms": "6000",
                                   "fetch.wait.max.ms": "100"})
    keyed = op.map("parse", source.oks, parse)
    clock = win.EventClock(event_time, wait_for_system_duration=timedelta(seconds=5))
    windower = win.TumblingWindower(length=timedelta(minutes=5), align_to=_EPOCH)
    windows = win.fold_window("sum", keyed, clock, windower, lambda: 0.0, fold,
                              lambda a, b: a + b)
    op.inspect("late", windows.late, lambda _step, item: late(item))
    kop.output("out", op.map("encode", windows.down, encode), brokers=[args.bootstrap],
               topic=args.output, add_config={"enable.idempotence": "false"})
    run_main(flow)  # type: ignore[no-untyped-call]

    result = {
        "processed": progress["n"],
        "started": started_wall,
        "first": progress["t0"],
        "last": progress["t1"],
        "first_events": 1,
        "cpu_seconds": (progress["cpu1"] - progress["cpu0"]) if progress["t1"] else None,
        "stopped": time.time(),
        "peak_rss_kb": peak_rss_kb(),
        "late": progress["late"],
        "window_results": progress["results"],
    }
    sys.stdout.write("BENCH-RESULT " + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
