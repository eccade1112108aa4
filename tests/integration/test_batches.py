"""RecordBatches on a real broker: batches held open, built in a thread and split arrive
whole and in order."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import AIOKafkaProducer

from agents.batches import RecordBatches, SentBatch
from app.kafka.admin import ensure_topics
from app.kafka.compression import batch_compression
from app.kafka.security import KafkaConnection
from app.kafka.topic_io import read_topic

pytestmark = pytest.mark.integration

Record = tuple[bytes, bytes, int]


def _records(partition: int, first: int, count: int) -> list[Record]:
    return [(b"%d-%d" % (partition, n), b'{"n":%d,"total":%d.5}' % (n, 3 * n), 1_000 + n)
            for n in range(first, first + count)]


async def _started(kafka: KafkaConnection) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**kafka.client_kwargs(acks="all"))
    await producer.start()
    return producer


async def _stored(kafka: KafkaConnection, topic: str) -> dict[int, list[Record]]:
    found: dict[int, list[Record]] = {}
    for record in await read_topic(kafka, topic):
        found.setdefault(record.partition, []).append(
            (record.key or b"", record.value or b"", record.timestamp_ms))
    return found


async def test_an_open_batch_stays_open_while_its_partition_has_one_queued(
        kafka: KafkaConnection, unique_id: str) -> None:
    """A batch handed to the producer stays queued until its sender runs; records appended
    meanwhile are held in one open batch instead of a second batch waiting for the first."""
    topic = f"{unique_id}-held"
    await ensure_topics(kafka, {topic: 1})
    producer = await _started(kafka)
    try:
        batches = RecordBatches(producer, batch_compression("zstd"))
        batches.to(topic, 0).extend(_records(0, 0, 10))
        first = await batches.submit()
        # No await has let the sender run since: that batch is still queued.
        batches.to(topic, 0).extend(_records(0, 10, 10))
        held = await batches.submit(hold_queued=True)
        batches.to(topic, 0).extend(_records(0, 20, 10))
        rest = await batches.submit()
        metadata = await asyncio.gather(*(sent.future for sent in first + held + rest))
    finally:
        await producer.stop()
    assert [sent.count for sent in first] == [10]
    assert held == []
    assert [sent.count for sent in rest] == [20]
    assert [meta.offset for meta in metadata] == [0, 10]
    assert await _stored(kafka, topic) == {0: _records(0, 0, 30)}


async def test_batches_built_in_a_thread_held_and_split_arrive_whole_and_in_order(
        kafka: KafkaConnection, unique_id: str) -> None:
    """Rounds of records on three partitions, some too random to compress (their batches
    are split), submitted while the input goes on, then all at once: the broker holds
    every record once, in order, and the delivery offsets name them."""
    topic = f"{unique_id}-rounds"
    await ensure_topics(kafka, {topic: 3})
    rng = random.Random(11)
    expected: dict[int, list[Record]] = {0: [], 1: [], 2: []}
    sent: list[SentBatch] = []
    producer = await _started(kafka)
    try:
        batches = RecordBatches(producer, batch_compression("zstd"))
        for round_ in range(40):
            for partition in range(3):
                if round_ % 13 == partition:  # ~1.5 MB that does not compress
                    records = [(b"%d-r%d-%d" % (partition, round_, n), rng.randbytes(30_000),
                                5_000 + n) for n in range(50)]
                else:
                    records = _records(partition, 1_000 * round_, rng.randrange(1, 3_000))
                batches.to(topic, partition).extend(records)
                expected[partition].extend(records)
            sent.extend(await batches.submit(hold_queued=True))
            await asyncio.sleep(0)  # the sender and the build thread get a turn
        sent.extend(await batches.submit())
        metadata = await asyncio.gather(*(batch.future for batch in sent))
    finally:
        await producer.stop()
    assert await _stored(kafka, topic) == expected
    for partition in range(3):
        offsets = [(meta.offset, batch.count) for batch, meta in zip(sent, metadata, strict=True)
                   if batch.partition == partition]
        assert [offset for offset, _ in offsets] == [
            sum(count for _, count in offsets[:n]) for n in range(len(offsets))]
        assert sum(count for _, count in offsets) == len(expected[partition])
