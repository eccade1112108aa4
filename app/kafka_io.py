"""Reading and writing whole topics: used by tests, the report and the benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .kafka_admin import true_end_offsets

__all__ = ["TopicRecord", "read_topic", "read_until", "send_raw"]


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record read back from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        if time.monotonic() > deadline:
            message = f"topic {topic!r} does not exist"
            raise LookupError(message)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 30.0,
                     on_progress: Callable[[int, int], None] | None = None) -> list[TopicRecord]:
    """Every record in ``topic`` now, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic, timeout)
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await true_end_offsets(bootstrap, tps)
        total = sum(ends.values())
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[TopicRecord] = []
        remaining = {tp for tp in tps if ends.get(tp, 0) > 0}
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                message = f"reading {topic!r} took longer than {timeout}s"
                raise TimeoutError(message)
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=10000)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append(TopicRecord(tp.partition, r.offset, r.key, r.value,
                                               tuple(r.headers or ()), r.timestamp))
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if on_progress is not None:
                on_progress(len(out), total)
        return out
    finally:
        await consumer.stop()


async def read_until(bootstrap: str, topic: str, predicate: Callable[[list[TopicRecord]], bool],
                     *, timeout: float = 60.0) -> list[TopicRecord]:
    """Re-read ``topic`` until ``predicate(records)`` holds (poll with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = await read_topic(bootstrap, topic, timeout=max(deadline - time.monotonic(),
                                                                     1.0))
        except LookupError:
            records = []
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            message = f"{topic}: condition not met within {timeout}s ({len(records)} records)"
            raise TimeoutError(message)
        await asyncio.sleep(0.3)


async def send_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]],
                   *, partition: int | None = None) -> int:
    """Send ``(key, value)`` records as they are (keyed by the default partitioner)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, partition=partition)
                   for key, value in records]
        await producer.flush()
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()
