"""RecordBatches: records grouped into Kafka record batches per topic and partition."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from app.kafka.compression import BatchCompression, batch_compression
from app.records.speedups import Writer, speedups

__all__ = ["BATCH_BYTES", "PartitionBatch", "RecordBatches", "SentBatch", "builder_thread",
           "fitted"]

#: Largest batch sent, as the broker gets it (compressed): under Kafka's default
#: message.max.bytes (1 MiB).
BATCH_BYTES = 900_000

#: How many times BATCH_BYTES of records a compressed batch collects. At their fast levels
#: the codecs shrink the worker's batches of JSON records 3.9 (lz4) to 7 (zstd) times, so
#: these come to about half of BATCH_BYTES; one that still comes out larger is split before
#: it is sent (:func:`fitted`). Fewer, larger batches mean fewer requests to wait for:
#: the producer takes one batch per partition into a request.
RECORDS_PER_BATCH_BYTE = {"none": 1, "snappy": 2, "lz4": 2, "gzip": 4, "zstd": 4}

#: Batches taken but not yet built before a call to submit waits for them.
MAX_BUILDING = 16

#: Bytes of records from which a batch is compressed in the builder thread (a batch of a
#: backlog's fetch); a smaller one costs less than handing it over.
THREAD_BUILD_BYTES = 100_000

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
    """Appends records to one open batch per (topic, partition); submits them together.

    One ``send_batch`` and one future per batch instead of one ``send`` and one future per
    record: sending output records one by one cost a quarter of the worker's CPU. Appending
    is synchronous (a full batch waits in memory for :meth:`submit`), because the worker
    appends about five records per event and a coroutine per record showed in profiles.
    """

    def __init__(self, producer: Any, compression: BatchCompression = UNCOMPRESSED) -> None:
        self._producer = producer
        self._compression = compression
        # Compressed batches are built (compressed) here, before the producer has them, so
        # that one too large can still be split: not with an idempotent producer, which
        # stamps its sequence numbers into a batch as it sends it.
        self._build_first = (compression.codec != 0
                             and getattr(producer, "_txn_manager", None) is None)
        self._limit = BATCH_BYTES * (RECORDS_PER_BATCH_BYTE[compression.name]
                                     if self._build_first else 1)
        self._open: dict[tuple[str, int], PartitionBatch] = {}
        self._ready: list[tuple[str, int, BatchBuilder, int]] = []
        #: Batches taken and being built, in order: (topic, partition, built pieces).
        self._building: deque[tuple[str, int, asyncio.Future[list[tuple[BatchBuilder, int]]]]]
        self._building = deque()

    def to(self, topic: str, partition: int) -> PartitionBatch:
        """The batch being filled for ``topic`` and ``partition``."""
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._open[topic, partition] = PartitionBatch(
                topic, partition, self._ready, self._compression, self._limit)
        return batch

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> None:
        """Append one record (see :meth:`PartitionBatch.append`)."""
        self.to(topic, partition).append(key, value, timestamp_ms, headers or [])

    def take(self, keep: Callable[[str, int], bool] | None = None,
             ) -> list[tuple[str, int, BatchBuilder, int]]:
        """Every batch with records, closed: ``(topic, partition, builder, count)``; the
        next record starts a new batch. They come in rounds (:func:`_round_of`): each
        partition's batches in the order they filled.

        An open batch whose ``(topic, partition)`` ``keep`` accepts stays open (full ones
        are always taken): the next records join it.
        """
        for where, batch in self._open.items():
            if keep is None or not keep(*where):
                batch.set_aside()
        # In place: the open batches set full ones aside into this same list.
        ready = self._ready.copy()
        self._ready.clear()
        ready.sort(key=_round_of(ready))
        for _, _, builder, _ in ready:
            builder.close()
        return ready

    async def submit(self, hold_queued: bool = False) -> list[SentBatch]:
        """Hand the batches to the producer, in rounds as :meth:`take` gives them; return
        what it took.

        Compressed batches of :data:`THREAD_BUILD_BYTES` or more are compressed in a thread
        of their own (:func:`builder_thread`; the codecs let go of the interpreter while
        they work) while the input goes on, and go to the producer in order once built.
        Smaller ones, as a live stream's alerts, are built at once and go without delay.

        The producer queues one batch per topic partition, and a second one waits until
        its sender has taken the first into a request (one request in flight per broker).
        With ``hold_queued``, an open batch of a partition that still has one queued or
        being built stays open instead of waiting: the records that arrive meanwhile go
        out in that batch with the sender's next request, no later than had the input
        waited. Batches still being built are handed over by a later call. A full batch
        is always taken, and at most :data:`MAX_BUILDING` wait to be built, which holds the
        memory to a few batches per partition.

        Without ``hold_queued``, every batch is with the producer when this returns.
        """
        loop = asyncio.get_running_loop()
        for topic, partition, builder, count in self.take(self._queued if hold_queued else None):
            if self._build_first and builder.size() >= THREAD_BUILD_BYTES:
                pieces = loop.run_in_executor(builder_thread(), fitted, topic, partition,
                                              builder, count, self._compression)
            else:
                pieces = loop.create_future()
                pieces.set_result(fitted(topic, partition, builder, count, self._compression)
                                  if self._build_first else [(builder, count)])
            self._building.append((topic, partition, pieces))
        sent = []
        building = self._building
        while building and (not hold_queued or building[0][2].done()
                            or len(building) > MAX_BUILDING):
            topic, partition, pieces = building.popleft()
            for piece, piece_count in await pieces:
                future = await self._producer.send_batch(piece, topic, partition=partition)
                sent.append(SentBatch(topic, partition, piece_count, future))
        return sent

    def _queued(self, topic: str, partition: int) -> bool:
        """Whether a batch of ours for ``topic`` and ``partition`` is still being built or
        queued in the producer (aiokafka's accumulator: a new one would wait for it)."""
        return (any(where == topic and part == partition for where, part, _ in self._building)
                or bool(self._producer._message_accumulator._batches.get((topic, partition))))


def _round_of(ready: list[tuple[str, int, BatchBuilder, int]],
              ) -> Callable[[tuple[str, int, BatchBuilder, int]], int]:
    """The sort key that deals ``ready`` out in rounds: every partition's first batch, then
    every second one, ...; each partition's own batches stay in order.

    The producer takes one batch per partition into a request, and a partition's next
    batch waits until the one before is taken. Submitted partition by partition, each
    of a partition's batches after its first waited for a request of its own; in rounds,
    a request carries one batch of every partition.
    """
    counts: dict[tuple[str, int], int] = {}

    def round_of(item: tuple[str, int, BatchBuilder, int]) -> int:
        where = (item[0], item[1])
        count = counts[where] = counts.get(where, -1) + 1
        return count

    return round_of


@cache
def builder_thread() -> ThreadPoolExecutor:
    """The one thread that builds (compresses) the worker's batches, off the event loop."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="txstream-batches")


def fitted(topic: str, partition: int, builder: BatchBuilder, count: int,
           compression: BatchCompression) -> list[tuple[BatchBuilder, int]]:
    """``builder``'s batch built now, or, if it comes to more than :data:`BATCH_BYTES`, its
    records in two batches, each fitted in turn: ``(builder, count)`` in order.

    A single record over the limit stays as it is: the broker judges it.
    """
    built = builder._build()
    if len(built) <= BATCH_BYTES or count < 2:
        return [(builder, count)]
    records = list(DefaultRecordBatch(bytes(built)))
    pieces = []
    for half in (records[:count // 2], records[count // 2:]):
        ready: list[tuple[str, int, BatchBuilder, int]] = []
        batch = PartitionBatch(topic, partition, ready, compression, limit=sys.maxsize)
        for record in half:
            batch.append(record.key, record.value, record.timestamp, list(record.headers))
        batch.set_aside()
        [(_, _, piece, piece_count)] = ready
        piece.close()
        pieces.extend(fitted(topic, partition, piece, piece_count, compression))
    return pieces


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

    __slots__ = ("_add", "_compression", "_limit", "_ready", "buffer", "builder", "count",
                 "partition", "topic")

    builder: BatchBuilder
    count: int
    #: The compiled record builder (None without the compiled module).
    buffer: Any
    _add: Callable[[int, int | None, bytes | None, bytes | None, list[tuple[str, bytes]]], Any]

    def __init__(self, topic: str, partition: int,
                 ready: list[tuple[str, int, BatchBuilder, int]],
                 compression: BatchCompression = UNCOMPRESSED,
                 limit: int = BATCH_BYTES) -> None:
        self.topic = topic
        self.partition = partition
        self._ready = ready
        self._compression = compression
        #: Bytes of records a batch takes before it is full (a first record always fits).
        self._limit = limit
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
            self.builder = BatchBuilder(self._limit, compression.codec, is_transactional=False)
            self.buffer = None
        else:
            self.buffer = speedups.RecordBatchBuffer(self._limit, False, compression.codec,
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
