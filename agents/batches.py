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
    """Appends records to one open batch per (topic, partition); submits full ones.

    One ``send_batch`` and one future per batch instead of one ``send`` and one future per
    record: sending output records one by one cost a quarter of the worker's CPU.
    """

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._open: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        self.sent: list[SentBatch] = []

    async def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                  timestamp_ms: int | None = None,
                  headers: list[tuple[str, bytes]] | None = None) -> None:
        """Append one record (submitting the open batch first if it is full)."""
        slot = (topic, partition)
        entry = self._open.get(slot)
        if entry is None:
            entry = self._open[slot] = (self._new_builder(), [0])
        builder, count = entry
        if builder.append(timestamp=timestamp_ms, key=key, value=value,
                          headers=headers or []) is None:
            await self._submit(slot)
            builder, count = self._open[slot] = (self._new_builder(), [0])
            if builder.append(timestamp=timestamp_ms, key=key, value=value,
                              headers=headers or []) is None:
                size = len(value or b"")
                message = f"a record of {size} bytes does not fit a {BATCH_BYTES}-byte batch"
                raise ValueError(message)
        count[0] += 1

    async def submit(self) -> list[SentBatch]:
        """Submit every open batch; return (and forget) all batches submitted so far."""
        for slot in list(self._open):
            await self._submit(slot)
        sent, self.sent = self.sent, []
        return sent

    async def _submit(self, slot: tuple[str, int]) -> None:
        builder, count = self._open.pop(slot)
        if count[0]:
            builder.close()
            future = await self._producer.send_batch(builder, slot[0], partition=slot[1])
            self.sent.append(SentBatch(slot[0], slot[1], count[0], future))

    @staticmethod
    def _new_builder() -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0, is_transactional=False)
