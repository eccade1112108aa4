"""TXSTREAM_COMPRESSION: what the broker stores is compressed as set, and reads back exactly."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from app.kafka.changelog import changelog_topic
from app.kafka.security import KafkaConnection
from app.kafka.topic_io import read_until, send_raw
from app.records.times import parse_time

from .conftest import WorkerFactory

pytestmark = pytest.mark.integration

T0 = parse_time("2026-03-12T14:00:00Z")
S = 1000
TUMBLING_MS = 10 * S
CUSTOMERS = range(1, 201)
#: Three transactions per customer, over one or two 10 s windows: (customer, ms, cents),
#: in event-time order (none late).
TRANSACTIONS = sorted(((c, T0 + seconds * S, 100 * c + n)
                       for c in CUSTOMERS
                       for n, seconds in enumerate((c % 7, 5 + c % 11, 15))),
                      key=lambda tx: tx[1])
#: Later ones of other customers, on every partition: the watermarks pass 20 s, so every
#: window above closes (theirs stay open).
CLOSING = [(c, T0 + 60 * S, 100) for c in range(1001, 1041)]


def _expected_tumbling() -> dict[tuple[int, int], tuple[int, int]]:
    """(customer, window start) -> (count, total cents), computed naively."""
    windows: dict[tuple[int, int], list[int]] = defaultdict(list)
    for customer, at, cents in TRANSACTIONS:
        windows[customer, at - at % TUMBLING_MS].append(cents)
    return {key: (len(amounts), sum(amounts)) for key, amounts in windows.items()}


def _records() -> list[tuple[bytes, bytes]]:
    return [(str(customer).encode(),
             (f'{{"tx_id":"t{n}","customer_id":{customer},"amount":{cents // 100}.'
              f'{cents % 100:02d},"currency":"PLN","event_time":{at}}}').encode())
            for n, (customer, at, cents) in enumerate(TRANSACTIONS + CLOSING)]


async def _batches(kafka: KafkaConnection, topic: str) -> list[tuple[int, int]]:
    """(compression codec, record count) of every batch the broker holds for ``topic``,
    fetched as stored: the consumer's API decompresses and hides the codec."""
    client = AIOKafkaClient(**kafka.client_kwargs())
    await client.bootstrap()
    try:
        await client._wait_on_metadata(topic)
        found = []
        for partition in sorted(client.cluster.partitions_for_topic(topic)):
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            offset, end = 0, None
            while end is None or offset < end:
                request = FetchRequest(500, 1, 1 << 24, 0,
                                       [(topic, [(partition, offset, 1 << 24)])])
                response = await client.send(leader, request)
                # Every version: partition, error, high watermark, ..., records last.
                _, error, end, *_, data = response.topics[0][1][0]
                assert error == 0, f"fetch {topic}[{partition}] at {offset}: error {error}"
                records = MemoryRecords(data)
                while (batch := records.next_batch()) is not None:
                    if batch.next_offset > offset:
                        found.append((batch.compression_type,
                                      batch.next_offset - batch.base_offset))
                        offset = batch.next_offset
        return found
    finally:
        await client.close()


@pytest.mark.parametrize(("setting", "codec"), [(None, 4), ("none", 0), ("lz4", 3)])
async def test_outputs_and_changelogs_are_stored_compressed_as_set(
        workers: WorkerFactory, setting: str | None, codec: int) -> None:
    """The default is zstd (codec 4); every batch of the window results and of a changelog
    carries the codec set, and the results read back exactly."""
    options = {} if setting is None else {"compression": setting}
    workers.start(tumbling="10s", hopping="20s/10s", sliding="10s", session_gap="10s",
                  allowed_lateness="0s", idle_timeout="1s", retention="1h", **options)
    await send_raw(workers.kafka, workers.topics.transactions, _records())

    expected = _expected_tumbling()
    results = await read_until(
        workers.kafka, workers.topics.window_results,
        lambda rs: sum(b'"tumbling"' in (r.value or b"") for r in rs) >= len(expected),
        timeout=90)
    tumbling = [orjson.loads(r.value or b"{}") for r in results
                if b'"tumbling"' in (r.value or b"")]
    assert {(w["customer_id"], parse_time(w["start"])): (w["count"], round(w["total"] * 100))
            for w in tumbling} == expected
    assert len(tumbling) == len(expected)

    for topic in (workers.topics.window_results,
                  changelog_topic(workers.state_id(), "tumbling")):
        batches = await _batches(workers.kafka, topic)
        assert batches, topic
        assert {found for found, _ in batches} == {codec}, (topic, batches)
