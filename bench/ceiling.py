"""The ceiling: a plain aiokafka ``getmany`` loop, orjson decode, a dict sum per customer.

``python -m bench.ceiling --broker kafka://H:P --topic T --partitions P --events N`` reads the
topic from the beginning without a consumer group (nothing committed, no state, no
outputs) with the same fetch sizes as the txstream worker, and prints one JSON line with
its own timings. It is the most a Python process can do with these records here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka.security import KafkaConnection, kafka_connection
from app.settings import Settings

from .procs import peak_rss_kb

__all__ = ["main"]


async def run(kafka: KafkaConnection, topic: str, partitions: int,
              events: int) -> dict[str, object]:
    """Consume ``events`` records and sum their amounts per customer; return timings."""
    started = time.time()
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20, fetch_max_bytes=8 << 20))
    await consumer.start()
    sums: defaultdict[int, float] = defaultdict(float)
    n = 0
    first = first_events = cpu0 = last = cpu1 = None
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loads = orjson.loads
        while n < events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            got = 0
            for records in batches.values():
                for record in records:
                    obj = loads(record.value)
                    sums[obj["customer_id"]] += obj["amount"]
                got += len(records)
            if not got:
                continue
            n += got
            if first is None:
                # Timing starts once the first batch is done, as for every target.
                first, first_events, cpu0 = time.time(), n, time.process_time()
        last, cpu1 = time.time(), time.process_time()
    finally:
        await consumer.stop()
    return {
        "processed": n,
        "customers": len(sums),
        "started": started,
        "first": first,
        "first_events": first_events,
        "last": last,
        "cpu_seconds": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "stopped": time.time(),
        "peak_rss_kb": peak_rss_kb(),
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print ``BENCH-RESULT {json}``."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--broker", required=True,
                        help="kafka://host:port (TXSTREAM_KAFKA_* apply)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    kafka = kafka_connection(Settings.load(broker=args.broker))
    result = asyncio.run(run(kafka, args.topic, args.partitions, args.events))
    sys.stdout.write("BENCH-RESULT " + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
