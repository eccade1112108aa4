"""TXSTREAM_COMPRESSION: what the broker stores is compressed as set, and reads back exactly."""

from __future__ import annotations

import shutil
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
from .test_recovery import assert_windows_exact

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


def _expected_tumbling(transactions: list[tuple[int, int, int]] = TRANSACTIONS,
                       ) -> dict[tuple[int, int], tuple[int, int]]:
    """(customer, window start) -> (count, total cents), computed naively."""
    windows: dict[tuple[int, int], list[int]] = defaultdict(list)
    for customer, at, cents in transactions:
        windows[customer, at - at % TUMBLING_MS].append(cents)
    return {key: (len(amounts), sum(amounts)) for key, amounts in windows.items()}


def _records(transactions: list[tuple[int, int, int]] = TRANSACTIONS + CLOSING,
             first_id: int = 0) -> list[tuple[bytes, bytes]]:
    return [(str(customer).encode(),
             (f'{{"tx_id":"t{n}","customer_id":{customer},"amount":{cents // 100}.'
              f'{cents % 100:02d},"currency":"PLN","event_time":{at}}}').encode())
            for n, (customer, at, cents) in enumerate(transactions, first_id)]


def _truth(transactions: list[tuple[int, int, int]]) -> dict[int, list[tuple[int, int, int]]]:
    """customer -> [(window start, count, total cents)] by start, as the views serve them."""
    truth: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for (customer, start), (count, cents) in sorted(_expected_tumbling(transactions).items()):
        truth[customer].append((start, count, cents))
    return truth


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


async def test_a_changelog_half_uncompressed_rebuilds_exactly(workers: WorkerFactory) -> None:
    """An upgrade: a worker with TXSTREAM_COMPRESSION=none writes the first half, its
    successor (zstd, the default) the rest; the tables rebuilt from that mixed changelog
    alone hold every window exactly."""
    # No idle timeout: the pause while the worker is replaced must not close any window.
    settings = {"tumbling": "10s", "hopping": "20s/10s", "sliding": "10s",
                "session_gap": "10s", "allowed_lateness": "0s", "idle_timeout": "10m",
                "retention": "1h"}
    half = len(TRANSACTIONS) // 2
    old = workers.start("old", compression="none", **settings)
    await send_raw(workers.kafka, workers.topics.transactions,
                   _records(TRANSACTIONS[:half]))
    await assert_windows_exact(old, _truth(TRANSACTIONS[:half]))
    old.process.terminate(timeout=30)  # a clean stop: its state is flushed

    new = workers.start("new", datadir=old.datadir, **settings)
    await send_raw(workers.kafka, workers.topics.transactions,
                   _records(TRANSACTIONS[half:] + CLOSING, first_id=half))
    await assert_windows_exact(new, _truth(TRANSACTIONS))
    codecs = {codec for codec, _ in await _batches(
        workers.kafka, changelog_topic(workers.state_id(), "tumbling"))}
    assert codecs == {0, 4}

    new.process.kill()
    shutil.rmtree(new.datadir)
    rebuilt = workers.start("rebuilt", datadir=new.datadir, **settings)
    await assert_windows_exact(rebuilt, _truth(TRANSACTIONS))
