"""RecordBatches: records grouped into Kafka record batches per topic and partition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder

from app.kafka.compression import BatchCompression, batch_compression
from app.records.speedups import Writer, speedups

__all__ = ["BATCH_BYTES", "PartitionBatch", "RecordBatches", "SentBatch"]

#: Largest batch built; under Kafka's default message.max.bytes (1 MiB).
BATCH_BYTES = 900_000

#: Batches as they are written.
UNCOMPRESSED = batch_compression("none")

#: Records without headers (never mutated).
_NO_HEADERS: list[tuple[str, bytes]] = []


@dataclass(frozen=True, slots=True)
class SentBatch:
    """One submitted batch: where it went, how many records, and its delivery future."""

    topic: str
    partition: int
    count: int
    future: asyncio.Future[Any]


class RecordBatches:
    """Appends records to one open batch per (topic, partition); submits them all at once.

    One ``send_batch`` and one future per batch instead of one ``send`` and one future per
    record: sending output records one by one cost a quarter of the worker's CPU. Appending
    is synchronous (a full batch waits in memory for :meth:`submit`), because the worker
    appends about five records per event and a coroutine per record showed in profiles.
    """

    def __init__(self, producer: Any, compression: BatchCompression = UNCOMPRESSED) -> None:
        self._producer = producer
        self._compression = compression
        self._open: dict[tuple[str, int], PartitionBatch] = {}
        self._ready: list[tuple[str, int, BatchBuilder, int]] = []

    def to(self, topic: str, partition: int) -> PartitionBatch:
        """The batch being filled for ``topic`` and ``partition``."""
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._open[topic, partition] = PartitionBatch(
                topic, partition, self._ready, self._compression)
        return batch

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> None:
        """Append one record (see :meth:`PartitionBatch.append`)."""
        self.to(topic, partition).append(key, value, timestamp_ms, headers or [])

    def take(self) -> list[tuple[str, int, BatchBuilder, int]]:
        """Every batch with records, closed, in the order they filled: ``(topic, partition,
        builder, count)``; the next record starts a new batch."""
        for batch in self._open.values():
            batch.set_aside()
        self._open.clear()
        ready, self._ready = self._ready, []
        for _, _, builder, _ in ready:
            builder.close()
        return ready

    async def submit(self) -> list[SentBatch]:
        """Submit every batch, in the order they filled; return what was submitted."""
        sent = []
        for topic, partition, builder, count in self.take():
            future = await self._producer.send_batch(builder, topic, partition=partition)
            sent.append(SentBatch(topic, partition, count, future))
        return sent


class PartitionBatch:
    """The records being appended for one topic and partition; a full batch is set aside.

    Records go straight to the C record builder inside aiokafka's ``BatchBuilder``: its
    own ``append`` wraps that call in two Python calls and a metadata object per record,
    which was a tenth of the cost of an output record. ``builder`` stays the aiokafka
    object that ``send_batch`` takes.

    With the compiled module, that record builder is ``RecordBatchBuffer``, into which
    the compiled encoders write records directly (:meth:`write`): no bytes, tuple or
    metadata object per record. It builds the same bytes as aiokafka's.
    """

    __slots__ = ("_add", "_compression", "_ready", "buffer", "builder", "count", "partition",
                 "topic")

    builder: BatchBuilder
    count: int
    #: The compiled record builder (None without the compiled module).
    buffer: Any
    _add: Callable[[int, int | None, bytes | None, bytes | None, list[tuple[str, bytes]]], Any]

    def __init__(self, topic: str, partition: int,
                 ready: list[tuple[str, int, BatchBuilder, int]],
                 compression: BatchCompression = UNCOMPRESSED) -> None:
        self.topic = topic
        self.partition = partition
        self._ready = ready
        self._compression = compression
        self._start()

    def append(self, key: bytes | None, value: bytes | None, timestamp_ms: int | None,
               headers: list[tuple[str, bytes]] = _NO_HEADERS) -> None:
        """Append one record, setting the current batch aside first if it is full."""
        if self._add(self.count, timestamp_ms, key, value, headers) is None:
            self._append_to_new(key, value, timestamp_ms, headers)
        else:
            self.count += 1

    def extend(self, records: Iterable[tuple[bytes | None, bytes | None, int | None]]) -> None:
        """Append ``(key, value, timestamp_ms)`` records without headers, in order."""
        add, count = self._add, self.count
        for key, value, timestamp_ms in records:
            if add(count, timestamp_ms, key, value, _NO_HEADERS) is None:
                self.count = count
                self._append_to_new(key, value, timestamp_ms, _NO_HEADERS)
                add, count = self._add, self.count
            else:
                count += 1
        self.count = count

    def extend_pairs(self, records: list[tuple[bytes, bytes | None]]) -> None:
        """Append ``(key, value)`` records (a None value deletes the key) stamped now."""
        if self.buffer is None:
            self.extend((key, value, None) for key, value in records)
        else:
            self.write(partial(speedups.pairs_into, records, int(time.time() * 1000)))

    def write(self, writer: Writer) -> None:
        """Append the records ``writer`` puts into :attr:`buffer`, in order, setting full
        batches aside (only with the compiled module: :attr:`buffer` is not None)."""
        first = 0
        while True:
            first = writer(self.buffer, first)
            self.count = self.buffer.count
            if first < 0:
                return
            self.set_aside()  # full: the rest goes into the next batch

    def set_aside(self) -> None:
        """Queue the current batch for submission (if it has records) and start a new one."""
        if self.count:
            # aiokafka reads the record count from the builder it wraps.
            self.builder._relative_offset = self.count
            self._ready.append((self.topic, self.partition, self.builder, self.count))
            self._start()

    def _start(self) -> None:
        compression = self._compression
        if speedups is None:
            self.builder = BatchBuilder(BATCH_BYTES, compression.codec, is_transactional=False)
            self.buffer = None
        else:
            self.buffer = speedups.RecordBatchBuffer(BATCH_BYTES, False, compression.codec,
                                                     compression.encode)
            self.builder = _BufferBatchBuilder(self.buffer)
        self._add = self.builder._builder.append
        self.count = 0

    def _append_to_new(self, key: bytes | None, value: bytes | None, timestamp_ms: int | None,
                       headers: list[tuple[str, bytes]]) -> None:
        # An empty builder takes any record (a record over the broker's limit is the
        # broker's to refuse), so this append cannot fail.
        self.set_aside()
        self._add(0, timestamp_ms, key, value, headers)
        self.count = 1


class _BufferBatchBuilder(BatchBuilder):  # type: ignore[misc]
    """aiokafka's ``BatchBuilder`` around a compiled ``RecordBatchBuffer``.

    The producer takes a ``BatchBuilder``; this one holds the compiled record builder
    where aiokafka's holds its own ``DefaultRecordBatchBuilder``, which answers the same
    calls (``append``, ``size``, ``build``, ``set_producer_state``).
    """

    def __init__(self, buffer: Any) -> None:
        # Not super().__init__(): that creates aiokafka's own record builder.
        self._builder = buffer
        self._relative_offset = 0
        self._buffer = None
        self._closed = False
        self._key_serializer = None
        self._value_serializer = None

    def _set_producer_state(self, producer_id: int, producer_epoch: int,
                            base_sequence: int) -> None:
        # aiokafka's asserts its own builder type first.
        self._builder.set_producer_state(producer_id, producer_epoch, base_sequence)
