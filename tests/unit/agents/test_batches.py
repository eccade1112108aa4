"""RecordBatches and PartitionBatch: records appended straight to a record builder, batches
sized for the wire, taken in rounds, split when they come out too large; read back."""

from __future__ import annotations

import random

from aiokafka.record.default_records import DefaultRecordBatch

from agents.batches import BATCH_BYTES, RecordBatches, fitted
from app.kafka.compression import batch_compression


def _read(builder: object) -> list[tuple[int, bytes | None, bytes | None, int]]:
    buffer = builder._build()  # type: ignore[attr-defined]
    return [(record.offset, record.key, record.value, record.timestamp)
            for record in DefaultRecordBatch(bytes(buffer))]


def test_records_fill_batches_in_order_and_read_back_exactly() -> None:
    batches = RecordBatches(producer=None)
    batch = batches.to("window-results", 3)
    value = b"v" * 110_000  # eight fit a 900 kB batch
    records = [(str(n).encode(), value + str(n).encode(), 1_000 + n) for n in range(20)]
    batch.append(*records[0])
    batch.extend(records[1:19])
    batch.append(*records[19])
    batch.set_aside()
    ready = batches._ready
    assert [(topic, partition, count) for topic, partition, _, count in ready] == [
        ("window-results", 3, 8), ("window-results", 3, 8), ("window-results", 3, 4)]
    read = [row for _, _, builder, _ in ready for row in _read(builder)]
    assert read == [(n % 8, key, val, ts) for n, (key, val, ts) in enumerate(records)]
    assert [builder.record_count() for _, _, builder, _ in ready] == [8, 8, 4]


def test_a_record_larger_than_a_batch_gets_a_batch_of_its_own() -> None:
    # Kafka's builders take any first record; the broker judges its size.
    batches = RecordBatches(producer=None)
    batch = batches.to("alerts", 0)
    batch.extend([(b"1", b"x" * 10, None), (b"2", b"x" * BATCH_BYTES, None), (b"3", b"y", 5)])
    batch.set_aside()
    assert [[(offset, key, len(value or b"")) for offset, key, value, _ in _read(builder)]
            for _, _, builder, _ in batches._ready] == [
        [(0, b"1", 10)], [(0, b"2", BATCH_BYTES)], [(0, b"3", 1)]]


def _json_records(count: int, start: int = 0) -> list[tuple[bytes, bytes, int]]:
    """Records like the worker's outputs (JSON that compresses several times over)."""
    return [(b"%d" % (n % 97), b'{"result_id":"tumbling:%d:1773299700000","kind":"tumbling",'
             b'"customer_id":%d,"count":%d,"total":%d.25}' % (n, n % 97, n % 5, n), 1_000 + n)
            for n in range(start, start + count)]


def _random_records(count: int, size: int, seed: int) -> list[tuple[bytes, bytes, int]]:
    """Records that do not compress: random values of ``size`` bytes."""
    rng = random.Random(seed)
    return [(b"r%d" % n, rng.randbytes(size), 2_000 + n) for n in range(count)]


def _raw(records: list[tuple[bytes, bytes, int]]) -> int:
    return sum(len(key) + len(value) for key, value, _ in records)


def _contents(pieces: list[tuple[object, int]]) -> list[tuple[bytes | None, bytes | None, int]]:
    return [(key, value, ts) for builder, _ in pieces for _, key, value, ts in _read(builder)]


def test_a_compressed_batch_takes_four_times_the_wire_limit_in_records() -> None:
    """With zstd a batch fills at 4 x BATCH_BYTES of records and is built under BATCH_BYTES;
    uncompressed, a batch fills at BATCH_BYTES."""
    records = _json_records(60_000)  # ~8 MB of records
    counts = {}
    for name in ("zstd", "none"):
        batches = RecordBatches(producer=None, compression=batch_compression(name))
        batches.to("window-results", 0).extend(records)
        taken = batches.take()
        counts[name] = [count for _, _, _, count in taken]
        assert _contents([(builder, count) for _, _, builder, count in taken]) == records
        for _, _, builder, _ in taken:
            assert len(builder._build()) <= BATCH_BYTES
    # The records' keys and values, without each record's few bytes of framing.
    assert 0.85 * 4 * BATCH_BYTES < _raw(records[:counts["zstd"][0]]) <= 4 * BATCH_BYTES
    assert 0.85 * BATCH_BYTES < _raw(records[:counts["none"][0]]) <= BATCH_BYTES


def test_an_idempotent_producer_gets_batches_under_the_wire_limit_built_as_sent() -> None:
    """A producer that stamps sequence numbers into batches as it sends them cannot take
    a batch built beforehand, so none may need splitting: they fill at BATCH_BYTES."""

    class Idempotent:
        _txn_manager = object()  # aiokafka's, present with enable_idempotence

    batches = RecordBatches(producer=Idempotent(), compression=batch_compression("zstd"))
    records = _json_records(20_000)
    batches.to("alerts", 1).extend(records)
    first = batches.take()[0][3]
    assert 0.85 * BATCH_BYTES < _raw(records[:first]) <= BATCH_BYTES


def test_a_batch_built_over_the_wire_limit_is_split_in_order() -> None:
    """Records that do not compress fill a zstd batch to 4 x BATCH_BYTES: built, it is
    split into batches each under BATCH_BYTES, holding every record, in order, with its
    key, value, timestamp and headers."""
    compression = batch_compression("zstd")
    batches = RecordBatches(producer=None, compression=compression)
    records = _random_records(70, 45_000, seed=7)  # 3.15 MB
    batch = batches.to("late-transactions", 2)
    batch.extend(records[:-1])
    batch.append(*records[-1], [("reason", b"late")])
    [(topic, partition, builder, count)] = batches.take()
    assert (topic, partition, count) == ("late-transactions", 2, 70)
    pieces = fitted(topic, partition, builder, count, compression)
    assert [piece_count for _, piece_count in pieces] == [17, 18, 17, 18]
    assert all(len(piece._build()) <= BATCH_BYTES for piece, _ in pieces)
    assert _contents(pieces) == records
    last = list(DefaultRecordBatch(bytes(pieces[-1][0]._build())))[-1]
    assert last.headers == [("reason", b"late")]
    assert DefaultRecordBatch(bytes(pieces[0][0]._build())).compression_type == 4


def test_a_batch_that_fits_is_built_once_and_kept() -> None:
    compression = batch_compression("zstd")
    batches = RecordBatches(producer=None, compression=compression)
    batches.to("alerts", 0).extend(_json_records(3_000))
    [(topic, partition, builder, count)] = batches.take()
    assert fitted(topic, partition, builder, count, compression) == [(builder, count)]
    # One record over the limit cannot be split: it goes as it is, for the broker to judge.
    big = RecordBatches(producer=None, compression=compression)
    big.to("alerts", 0).append(*_random_records(1, BATCH_BYTES + 10, seed=1)[0])
    [(topic, partition, builder, count)] = big.take()
    assert fitted(topic, partition, builder, count, compression) == [(builder, 1)]


def test_batches_are_taken_in_rounds_each_partitions_in_order() -> None:
    """A partition's second batch waits for the producer to take its first into a request,
    so the batches go one of each partition per round."""
    batches = RecordBatches(producer=None)
    value = b"v" * 290_000  # three fill a batch
    for topic, partition, fill in (("a", 0, 8), ("b", 0, 5), ("a", 1, 1)):
        batches.to(topic, partition).extend(
            (b"%s%d-%d" % (topic.encode(), partition, n), value, n) for n in range(fill))
    taken = batches.take()
    assert [(topic, partition, count) for topic, partition, _, count in taken] == [
        ("a", 0, 3), ("b", 0, 3), ("a", 1, 1), ("a", 0, 3), ("b", 0, 2), ("a", 0, 2)]
    keys = [key for _, _, builder, _ in taken for _, key, _, _ in _read(builder)]
    assert [key for key in keys if key.startswith(b"a0")] == [b"a0-%d" % n for n in range(8)]


def test_a_kept_open_batch_takes_the_next_records_and_loses_no_full_one() -> None:
    """take(keep) leaves a kept partition's open batch open (its full ones are taken);
    the records appended next join it, and batches that fill later are taken next time."""
    batches = RecordBatches(producer=None)
    value = b"v" * 290_000  # three fill a batch
    batch = batches.to("window-results", 0)
    batch.extend((b"%d" % n, value, n) for n in range(4))  # one full batch, one open
    first = batches.take(keep=lambda topic, partition: True)
    assert [count for _, _, _, count in first] == [3]
    batch.extend((b"%d" % n, value, n) for n in range(4, 9))  # fills 3..5, opens 6..8
    second = batches.take(keep=lambda topic, partition: False)
    assert [count for _, _, _, count in second] == [3, 3]
    keys = [key for _, _, builder, _ in first + second for _, key, _, _ in _read(builder)]
    assert keys == [b"%d" % n for n in range(9)]
    assert batches.take() == []
