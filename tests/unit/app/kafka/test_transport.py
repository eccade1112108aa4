"""RawRecords: batch topics' fetched records stay aiokafka's decoded records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord

from app.kafka.transport import RawRecords


@pytest.fixture
def restore_fetcher() -> Iterator[None]:
    before, topics = aiokafka_fetcher.PartitionRecords, RawRecords.raw_topics
    yield
    aiokafka_fetcher.PartitionRecords, RawRecords.raw_topics = before, topics


def _fetched(topic: str, first_offset: int) -> list[object]:
    builder = DefaultRecordBatchBuilder(2, 0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1,
                                        batch_size=1_000_000)
    for n in range(3):
        builder.append(n, 1_000 + n, f"k{n}".encode(), f"v{n}".encode(), [])
    buffer = bytearray(builder.build())
    buffer[0:8] = first_offset.to_bytes(8, "big")  # the batch's base offset
    records = aiokafka_fetcher.PartitionRecords(
        TopicPartition(topic, 2), MemoryRecords(bytes(buffer)), [], first_offset,
        None, None, True, 0)
    return list(records)


def test_batch_topics_get_decoded_records_and_others_consumer_records(
        restore_fetcher: None) -> None:
    RawRecords.install(["transactions"])
    raw, other = _fetched("transactions", 40), _fetched("x-changelog", 40)
    assert (aiokafka_fetcher.PartitionRecords is RawRecords,
            [(r.offset, r.key, r.value, r.timestamp) for r in raw],  # type: ignore[attr-defined]
            any(isinstance(r, ConsumerRecord) for r in raw),
            [(r.topic, r.partition, r.offset, r.key, r.value)  # type: ignore[attr-defined]
             for r in other],
            all(isinstance(r, ConsumerRecord) for r in other)) == (
        True,
        [(40, b"k0", b"v0", 1_000), (41, b"k1", b"v1", 1_001), (42, b"k2", b"v2", 1_002)],
        False,
        [("x-changelog", 2, 40, b"k0", b"v0"), ("x-changelog", 2, 41, b"k1", b"v1"),
         ("x-changelog", 2, 42, b"k2", b"v2")],
        True)
