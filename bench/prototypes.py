"""Prototype optimisations of the worker, applied by monkeypatching, for measurement only.

``python -m bench.prototypes`` runs ``txstream`` exactly as ``python -m app`` does, after
applying the patches named in ``BENCH_PATCHES`` (comma-separated). They exist to put a
number on a proposal before anyone changes app/, agents/ or tables/; they copy the logic
of those files as it was when written, so re-check them against the current code:

- ``batch-outputs``: ``Pipeline._send`` appends output records to one aiokafka
  ``BatchBuilder`` per topic and partition and submits each with ``send_batch`` (one
  future per batch), instead of one ``producer.send`` and one future per record.
- ``direct-changelog``: ``Pipeline._flush`` writes each table's dirty records with one
  RocksDB ``WriteBatch`` per partition and sends them to the changelog as record batches
  it awaits before releasing offsets (then sets Faust's persisted changelog offset),
  instead of ``table[key] = value`` per record, which queues one message per record in
  Faust's unbounded ``ProducerBuffer`` that a single task drains one by one.
- ``fetch-wait=MS``: the worker consumer's ``fetch_max_wait_ms`` (Faust hard-codes 1500;
  the embedded broker holds a fetch for up to that long even when records arrive).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

__all__ = ["apply", "main"]

#: Largest record batch the prototypes build (the broker's default message.max.bytes is 1 MB).
BATCH_BYTES = 900_000


def _batch_builder() -> Any:
    from aiokafka.producer.message_accumulator import BatchBuilder

    return BatchBuilder(BATCH_BYTES, 0, is_transactional=False)  # 0: no compression


class _Batches:
    """Record batches per (topic, partition), submitted when full and at the end."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], Any] = {}
        self.counts: dict[tuple[str, int], int] = {}
        self.futures: list[tuple[str, int, int, asyncio.Future[Any]]] = []

    async def add(self, topic: str, partition: int, key: bytes, value: bytes,
                  timestamp_ms: int | None) -> None:
        slot = (topic, partition)
        builder = self.open.get(slot)
        if builder is None:
            builder = self.open[slot] = _batch_builder()
            self.counts[slot] = 0
        if builder.append(timestamp=timestamp_ms, key=key, value=value, headers=[]) is None:
            await self._submit(slot)
            builder = self.open[slot] = _batch_builder()
            self.counts[slot] = 0
            if builder.append(timestamp=timestamp_ms, key=key, value=value, headers=[]) is None:
                message = f"record of {len(value)} bytes does not fit a {BATCH_BYTES} batch"
                raise ValueError(message)
        self.counts[slot] += 1

    async def _submit(self, slot: tuple[str, int]) -> None:
        builder = self.open.pop(slot)
        count = self.counts.pop(slot)
        if count:
            builder.close()
            future = await self.producer.send_batch(builder, slot[0], partition=slot[1])
            self.futures.append((slot[0], slot[1], count, future))

    async def submit_all(self) -> list[tuple[str, int, int, asyncio.Future[Any]]]:
        """Submit every open batch; return (topic, partition, records, future) of all."""
        for slot in list(self.open):
            await self._submit(slot)
        futures, self.futures = self.futures, []
        return futures


def _patch_batch_outputs() -> None:
    from agents import transactions
    from app.outputs import encode_alert, encode_late, encode_session, encode_window_result

    async def _send(self: Any, partition: int, out: Any) -> None:
        if not out:
            return
        counters = getattr(self, "outputs_sent", None)
        if counters is not None:
            counters.add(partition, out)
        batches = _Batches(self.app.producer._ensure_producer())
        topics = self.topics
        for alert in out.alerts:
            await batches.add(topics.alerts, partition, str(alert.customer_id).encode(),
                              encode_alert(alert), alert.event_time_ms)
        results = topics.window_results
        for result in out.results:
            await batches.add(results, partition, str(result.customer_id).encode(),
                              encode_window_result(result), result.end_ms)
        for session in out.sessions:
            await batches.add(topics.sessions, partition, str(session.customer_id).encode(),
                              encode_session(session), session.end_ms)
        for late in out.late:
            await batches.add(topics.late, partition, str(late.tx.customer_id).encode(),
                              encode_late(late, partition), late.tx.event_time_ms)
        self._pending.extend(future for *_, future in await batches.submit_all())

    transactions.Pipeline._send = _send  # type: ignore[method-assign]


def _patch_direct_changelog() -> None:
    import time

    from faust.types import TP
    from rocksdict import WriteBatch

    from agents import transactions

    async def _flush(self: Any) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
        assignment = self.consumer.assignment()
        source = self.topics.transactions
        batches = _Batches(self.app.producer._ensure_producer())
        stores: dict[str, Any] = {}
        released: list[tuple[Any, int]] = []
        for partition, state in self.states.items():
            tp = TP(source, partition)
            if tp not in assignment:
                continue
            for kind, kind_state in state.kinds.items():
                records = kind_state.dump_dirty()
                if not records:
                    continue
                table = self.app.state_tables[kind]
                topic = table.changelog_topic.get_topic_name()
                stores[topic] = table.data
                write = WriteBatch(raw_mode=True)
                for key, value in records:
                    write.put(key, value)
                table.data._db_for_partition(partition).write(write)
                for key, value in records:
                    await batches.add(topic, partition, key, value, None)
            applied = self._applied.get(tp)
            if applied is not None:
                released.append((tp, applied + 1))
        sent = await batches.submit_all()
        if sent:
            results = await asyncio.gather(*(future for *_, future in sent))
            last: dict[tuple[str, int], int] = {}
            for (topic, partition, count, _), metadata in zip(sent, results, strict=True):
                last[topic, partition] = max(last.get((topic, partition), -1),
                                             metadata.offset + count - 1)
            for (topic, partition), offset in last.items():
                stores[topic].set_persisted_offset(TP(topic, partition), offset)
        for tp, offset in released:
            self.consumer.release(tp, offset)
        self._last_flush = time.monotonic()

    transactions.Pipeline._flush = _flush  # type: ignore[method-assign]


def _patch_fetch_wait(ms: int) -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by the fetcher created at start()
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create


def apply(spec: str) -> list[str]:
    """Apply the comma-separated patches in ``spec``; return their names."""
    applied: list[str] = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        if name == "batch-outputs":
            _patch_batch_outputs()
        elif name == "direct-changelog":
            _patch_direct_changelog()
        elif name.startswith("fetch-wait="):
            _patch_fetch_wait(int(name.partition("=")[2]))
        else:
            message = f"unknown prototype patch {name!r}"
            raise ValueError(message)
        applied.append(name)
    return applied


def main() -> None:
    """Apply ``$BENCH_PATCHES``, then run the txstream command line."""
    names = apply(os.environ.get("BENCH_PATCHES", ""))
    print(f"bench.prototypes: patches applied: {', '.join(names) or 'none'}", flush=True)
    from app.cli import main as txstream_main

    txstream_main()


if __name__ == "__main__":
    main()
