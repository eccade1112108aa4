"""PartitionBatch: records appended straight to aiokafka's record builder, read back."""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatch

from agents.batches import BATCH_BYTES, RecordBatches


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
