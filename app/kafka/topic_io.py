"""Reading and writing whole topics: used by tests, the report and the benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from .changelog import end_offsets, stream_topic, topic_partitions
from .connect import start_client
from .security import KafkaConnection

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


async def read_topic(kafka: KafkaConnection, topic: str, *,
                     timeout: float = 30.0) -> list[TopicRecord]:
    """Every record in ``topic`` now (each partition in offset order); LookupError if none."""
    partitions = (await topic_partitions(kafka, [topic])).get(topic)
    if partitions is None:
        message = f"topic {topic!r} does not exist"
        raise LookupError(message)
    stops = await end_offsets(kafka, topic, partitions)
    return [TopicRecord(partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
            async for partition, records in stream_topic(kafka, topic, stops,
                                                         stall_timeout=timeout)
            for r in records]


async def read_until(kafka: KafkaConnection, topic: str,
                     predicate: Callable[[list[TopicRecord]], bool], *,
                     timeout: float = 60.0) -> list[TopicRecord]:
    """Re-read ``topic`` until ``predicate(records)`` holds (poll with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = await read_topic(kafka, topic, timeout=max(deadline - time.monotonic(),
                                                                     1.0))
        except LookupError:
            records = []
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            message = f"{topic}: condition not met within {timeout}s ({len(records)} records)"
            raise TimeoutError(message)
        await asyncio.sleep(0.3)


async def send_raw(kafka: KafkaConnection, topic: str,
                   records: Iterable[tuple[bytes | None, bytes]], *,
                   partition: int | None = None) -> int:
    """Send ``(key, value)`` records as they are (keyed by the default partitioner)."""
    producer = await start_client(lambda: AIOKafkaProducer(**kafka.client_kwargs(
        linger_ms=5, acks="all")), kafka)
    try:
        futures = [await producer.send(topic, value, key=key, partition=partition)
                   for key, value in records]
        await producer.flush()
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()
