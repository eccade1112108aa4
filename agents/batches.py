"""RecordBatches: records grouped into Kafka record batches per topic and partition."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder

__all__ = ["BATCH_BYTES", "RecordBatches", "SentBatch"]

#: Largest batch built; under Kafka's default message.max.bytes (1 MiB).
BATCH_BYTES = 900_000


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

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._full: list[tuple[tuple[str, int], _OpenBatch]] = []
        self.sent: list[SentBatch] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> None:
        """Append one record (setting the open batch aside first if it is full)."""
        slot = (topic, partition)
        batch = self._open.get(slot)
        if batch is None:
            batch = self._open[slot] = _OpenBatch()
        if batch.builder.append(timestamp=timestamp_ms, key=key, value=value,
                                headers=headers or []) is None:
            self._full.append((slot, batch))
            batch = self._open[slot] = _OpenBatch()
            if batch.builder.append(timestamp=timestamp_ms, key=key, value=value,
                                    headers=headers or []) is None:
                size = len(value or b"")
                message = f"a record of {size} bytes does not fit a {BATCH_BYTES}-byte batch"
                raise ValueError(message)
        batch.count += 1

    async def submit(self) -> list[SentBatch]:
        """Submit every batch, in the order they filled; return (and forget) all submitted."""
        ready, self._full = self._full, []
        ready.extend(self._open.items())
        self._open.clear()
        for (topic, partition), batch in ready:
            if batch.count:
                batch.builder.close()
                future = await self._producer.send_batch(batch.builder, topic,
                                                         partition=partition)
                self.sent.append(SentBatch(topic, partition, batch.count, future))
        sent, self.sent = self.sent, []
        return sent


class _OpenBatch:
    """A batch being filled and how many records it holds."""

    __slots__ = ("builder", "count")

    def __init__(self) -> None:
        self.builder = BatchBuilder(BATCH_BYTES, 0, is_transactional=False)
        self.count = 0
