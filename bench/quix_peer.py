"""The peer: Quix Streams doing a per-customer windowed sum (run as its own process).

``python -m bench.quix_peer --broker kafka://H:P --topic T --events N --kind tumbling|hopping
--group G --state-dir D --output O`` reads ``T`` from the beginning, sums ``amount`` per
customer (the record key) in event-time windows (the value's ``event_time``, via a
timestamp extractor), RocksDB state with a changelog, and sends each closed window's
final sum to ``O``. It prints one JSON line with its own timings once it has processed
``N`` records, then stops (Quix commits its checkpoint on the way out).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .procs import peak_rss_kb

__all__ = ["main"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def event_time_ms(value: Any, _headers: Any, timestamp: int, _kind: Any) -> int:
    """Quix timestamp extractor: the value's ISO 8601 ``event_time`` in epoch ms."""
    try:
        moment = datetime.fromisoformat(value["event_time"])
    except (TypeError, KeyError, ValueError):
        return timestamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def late_quietly(*_args: Any) -> bool:
    """Quix ``on_late`` callback: count nothing, log nothing (txstream logs no event)."""
    return False


def main(argv: list[str] | None = None) -> None:
    """Run the peer until ``--events`` records are processed; print its timings as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.quix_peer")
    parser.add_argument("--broker", required=True,
                        help="kafka://host:port (TXSTREAM_KAFKA_* apply)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--kind", choices=("tumbling", "hopping"), required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)

    from quixstreams import Application
    from quixstreams.dataframe.windows import Sum
    from quixstreams.kafka.configuration import ConnectionConfig

    from app.kafka.security import kafka_connection
    from app.settings import Settings

    started_wall = time.time()
    progress: dict[str, Any] = {"n": 0, "t0": None, "cpu0": None, "t1": None, "cpu1": None}
    target = args.events
    app: Any = None

    def on_processed(_topic: str, _partition: int, _offset: int) -> None:
        progress["n"] += 1
        n = progress["n"]
        if n == 1:
            progress["t0"] = time.time()
            progress["cpu0"] = time.process_time()
        if n == target:
            progress["t1"] = time.time()
            progress["cpu1"] = time.process_time()
            app.stop()

    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(
            kafka_connection(Settings.load(broker=args.broker)).librdkafka_config()),
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=on_processed,
        # The embedded broker has no idempotent producers (BROKER.md fact 3).
        producer_extra_config={"enable.idempotence": False},
        # Tansu holds a JoinGroup for half the session timeout (BROKER.md fact 1);
        # librdkafka's default of 45 s would add 22 s of start-up.
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        # Topics are created beforehand with explicit retention (fact 8); only the
        # changelogs are Quix's own.
        auto_create_topics=True,
    )
    source = app.topic(args.topic, value_deserializer="json", key_deserializer="str",
                       timestamp_extractor=event_time_ms)
    output = app.topic(args.output, value_serializer="json", key_serializer="str")
    sdf = app.dataframe(source)
    grace = timedelta(seconds=5)  # txstream's default allowed lateness
    if args.kind == "tumbling":
        windowed = sdf.tumbling_window(timedelta(minutes=5), grace_ms=grace,
                                       on_late=late_quietly)
    else:
        windowed = sdf.hopping_window(timedelta(minutes=10), timedelta(minutes=2),
                                      grace_ms=grace, on_late=late_quietly)
    sdf = windowed.agg(total=Sum("amount")).final()
    sdf.to_topic(output)
    app.run()

    result = {
        "processed": progress["n"],
        "started": started_wall,
        "first": progress["t0"],
        "last": progress["t1"],
        "first_events": 1,
        "cpu_seconds": (progress["cpu1"] - progress["cpu0"]) if progress["t1"] else None,
        "stopped": time.time(),
        "peak_rss_kb": peak_rss_kb(),
    }
    sys.stdout.write("BENCH-RESULT " + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
