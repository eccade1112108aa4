"""The batch seam: a Faust Kafka transport whose consumer hands source records over in batches.

Faust delivers every record as its own event (message -> event -> channel queue -> stream
iteration -> ack), about 100 us each here. Our consumer subclass takes the records of the
batch topics out of each ``getmany`` result before Faust turns them into events and hands
them, per partition, to a batch handler; everything else (group membership, assignment,
changelog recovery, standbys, other topics, offset commits) stays Faust's. The handler
tells the consumer which offsets are safe to commit with :meth:`BatchingConsumer.release`.

Records of the batch topics also skip aiokafka's ``ConsumerRecord``: the pipeline reads
only their offset, key and value, which the decoded record has (:class:`RawRecords`).

Changelog records take a bulk path too: while Faust's recovery reads a changelog (active
recovery or a standby), a fetch's records of each changelog partition go to
:class:`~app.kafka.recovery.BulkRecovery` at once instead of one event each.

It also corrects changelog end offsets: the embedded broker answers ListOffsets(LATEST)
with the base offset of the newest batch + 1, which makes Faust's recovery stop short.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

from aiokafka import TopicPartition
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from .admin import true_end_offsets
from .recovery import BulkRecovery
from .security import KafkaConnection

__all__ = [
    "BatchHandler",
    "BatchingConsumer",
    "BatchingTransport",
    "ChangelogGuard",
    "RawRecords",
    "TunedConsumerThread",
]

logger = logging.getLogger(__name__)

#: Receives ``{tp: [aiokafka ConsumerRecord, ...]}`` for the batch topics, in offset order.
BatchHandler = Callable[[Mapping[TP, list[Any]]], Awaitable[None]]
#: Told the true end offsets Faust is about to use (recovery), returns the ones to use.
ChangelogGuard = Callable[[Mapping[TP, int]], dict[TP, int]]


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a batch path for selected topics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_topics: frozenset[str] = frozenset()
        self.batch_handler: BatchHandler | None = None
        self.kafka: KafkaConnection | None = None
        self.changelog_guard: ChangelogGuard | None = None
        self._released: dict[TP, int] = {}

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        # Called from Faust's __init__, so the setting comes from the app.
        thread = TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)
        settings = getattr(self.app, "settings", None)
        if settings is not None:
            thread.fetch_max_wait_ms = settings.fetch_max_wait_ms
        return thread

    def set_batch_handler(self, topics: Iterable[str], handler: BatchHandler,
                          kafka: KafkaConnection) -> None:
        """Route records of ``topics`` to ``handler`` instead of Faust's streams."""
        self.batch_topics = frozenset(topics)
        self.batch_handler = handler
        self.kafka = kafka
        RawRecords.install(self.batch_topics)

    def set_changelog_guard(self, guard: ChangelogGuard) -> None:
        """Check the end offsets Faust's recovery reads against the local tables."""
        self.changelog_guard = guard

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        generation = self.app.consumer_generation_id
        records, active = await super()._wait_next_records(timeout)
        if records:
            records = self._take_changelogs(records, active, generation)
        handler = self.batch_handler
        if records and handler is not None and self.flow_active:
            topics = self.batch_topics
            ours = {tp: batch for tp, batch in records.items() if tp.topic in topics}
            if ours:
                records = {tp: batch for tp, batch in records.items() if tp.topic not in topics}
                assignment = self.assignment()
                await handler({tp: batch for tp, batch in ours.items() if tp in assignment})
        return records, active

    def _take_changelogs(self, records: Mapping[TP, list[Any]], active: set[TP] | None,
                         generation: int) -> Mapping[TP, list[Any]]:
        """Write the fetch's changelog records through the bulk recovery; return the rest.

        Only while the flow is active and the group generation is the one the fetch
        started in: otherwise Faust's recovery starts again and seeks from its own
        offsets, so the records are dropped (Faust's ``getmany`` drops them too).
        A partition recovery no longer reads is dropped as well: Faust's per-event
        loop would apply such a record to the table of the previous record.
        """
        tables: Any = self.app.tables
        changelogs = tables._changelogs  # not .changelog_topics: it builds a set per call
        ours = [tp for tp in records if tp.topic in changelogs]
        if not ours:
            return records
        recovery = tables.recovery
        if not isinstance(recovery, BulkRecovery):
            return records
        taken = set(ours)
        if self.app.consumer_generation_id == generation and self.flow_active:
            applied = False
            for tp in ours:
                batch = records[tp]
                if not batch or (active is not None and tp not in active):
                    continue
                table = recovery.bulk_table(tp)
                if table is None:
                    continue
                if not recovery.takes(table):
                    taken.discard(tp)  # Faust's own path, record by record
                    continue
                recovery.apply_records(tp, table, batch)
                applied = True
            if applied:
                recovery.after_records()
        return {tp: batch for tp, batch in records.items() if tp not in taken}

    def release(self, tp: TP, next_offset: int) -> None:
        """Every record of ``tp`` before ``next_offset`` is processed and its state written."""
        if next_offset > self._released.get(tp, -1):
            self._released[tp] = next_offset
            # Faust's committer only looks at partitions that appear in its ack index.
            self._acked.setdefault(tp, [])

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop release marks of partitions that left this worker."""
        for tp in tps:
            self._released.pop(tp, None)

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self.batch_topics:
            return self._released.get(tp)
        result: int | None = super()._new_offset(tp)
        return result

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        self.forget(revoked)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        reported: Mapping[TP, int] = await super().highwaters(*partitions)
        if self.kafka is None or not partitions:
            return reported
        answer = await true_end_offsets(
            self.kafka, [TopicPartition(tp.topic, tp.partition) for tp in partitions])
        corrected = {TP(tp.topic, tp.partition): offset for tp, offset in answer.items()}
        fixed = {tp: max(reported.get(tp, 0), corrected.get(tp, 0)) for tp in partitions}
        changed = {tp: (reported.get(tp), fixed[tp]) for tp in partitions
                   if reported.get(tp) != fixed[tp]}
        if changed:
            logger.info("corrected end offsets reported by the broker: %s", changed)
        if self.changelog_guard is not None:
            fixed = self.changelog_guard(fixed)
        return fixed


class RawRecords(aiokafka_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's iterator over a fetched partition's records, leaving some topics' raw.

    For every record aiokafka builds a ``ConsumerRecord`` (eleven fields, the key and
    value sizes, a tuple of headers): a fifth of the consumer's time here. The decoded
    record it is built from already has ``offset``, ``key``, ``value``, ``timestamp``
    and ``headers``, all the pipeline reads of a batch topic's record. Other topics'
    records (changelogs, Faust's own) are ``ConsumerRecord`` as before.
    """

    raw_topics: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def install(cls, topics: Iterable[str]) -> None:
        """Make aiokafka's fetcher use this class, with ``topics`` raw (process-wide)."""
        cls.raw_topics = cls.raw_topics | frozenset(topics)
        aiokafka_fetcher.PartitionRecords = cls

    def _consumer_record(self, tp: TopicPartition, record: Any) -> Any:
        if tp.topic in self.raw_topics:
            return record
        return super()._consumer_record(tp, record)


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a configurable fetch wait.

    Faust hard-codes ``fetch_max_wait_ms=1500``, and a broker may hold a fetch that long
    even when records arrive (the embedded one does), which put seconds between a
    purchase and its alert.
    """

    fetch_max_wait_ms: int = 100

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class BatchingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, with :class:`BatchingConsumer` as its consumer."""

    Consumer: ClassVar[type[Any]] = BatchingConsumer
