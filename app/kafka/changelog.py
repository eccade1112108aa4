"""Topics read back from the start: bounded batches per partition, and the live tables."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from app.exceptions import BrokerError
from tables.kindstate import META_KEY, KindState
from tables.validate import CorruptRecord

from .admin import true_end_offsets
from .connect import start_client, stop_client
from .security import KafkaConnection

__all__ = [
    "ChangelogPartition",
    "changelog_topic",
    "end_offsets",
    "load_kind",
    "read_changelog",
    "stream_topic",
    "topic_partitions",
]

#: Records per fetch: bounds memory while a whole topic streams through.
_BATCH = 5000


def changelog_topic(faust_app_id: str, kind: str) -> str:
    """The changelog topic of one window kind's table, as Faust names it."""
    return f"{faust_app_id}-{kind}-changelog"


async def topic_partitions(kafka: KafkaConnection, topics: Iterable[str],
                           timeout: float = 10.0) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists (missing ones are left out).

    Asks for the metadata of all topics: naming a missing topic would make the embedded
    broker create it (BROKER.md fact 5), and a report must not create topics.
    """
    wanted = set(topics)
    admin = await start_client(lambda: AIOKafkaAdminClient(
        **kafka.client_kwargs(request_timeout_ms=max(1000, int(timeout * 1000)))), kafka)
    try:
        described: list[dict[str, Any]] = await admin.describe_topics(None)
    except KafkaError as exc:
        raise BrokerError(f"cannot list topics on {kafka}: {exc!r}") from exc
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described
            if t["error_code"] == 0 and t["topic"] in wanted}


async def end_offsets(kafka: KafkaConnection, topic: str, partitions: int) -> dict[int, int]:
    """True end offset (last record + 1) of each partition of ``topic``."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = await true_end_offsets(kafka, tps)
    return {tp.partition: ends.get(tp, 0) for tp in tps}


async def stream_topic(kafka: KafkaConnection, topic: str, stops: Mapping[int, int], *,
                       stall_timeout: float = 30.0) -> AsyncIterator[tuple[int, list[Any]]]:
    """``(partition, records)`` batches from the start of each partition up to its stop offset.

    ``stops`` maps partition -> first offset not to read (the true end offset, say).
    Records of one partition come in offset order; partitions interleave. At most a few
    thousand records are held at a time. Raises BrokerError if nothing arrives for
    ``stall_timeout`` seconds while records are still expected.
    """
    tps = {TopicPartition(topic, p): stop for p, stop in stops.items() if stop > 0}
    if not tps:
        return
    consumer = await start_client(lambda: AIOKafkaConsumer(**kafka.client_kwargs(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20, fetch_max_wait_ms=100)), kafka)
    try:
        consumer.assign(list(tps))
        await consumer.seek_to_beginning(*tps)
        remaining = set(tps)
        last_progress = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=_BATCH)
            for tp, records in batches.items():
                if not records:
                    continue
                stop = tps[tp]
                kept = records if records[-1].offset < stop else [
                    r for r in records if r.offset < stop]
                if kept:
                    last_progress = time.monotonic()
                    yield tp.partition, kept
            for tp in list(remaining):
                # The position also moves past gaps (compaction, control batches), which
                # a wait for the record at ``stop - 1`` would not.
                if await consumer.position(tp) >= tps[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
            if remaining and time.monotonic() - last_progress > stall_timeout:
                raise BrokerError(f"reading {topic!r}: no records for {stall_timeout:g} s "
                                  f"with {len(remaining)} partition(s) unfinished")
    except KafkaError as exc:
        raise BrokerError(f"reading {topic!r} on {kafka} failed: {exc!r}") from exc
    finally:
        await stop_client(consumer)


@dataclass
class ChangelogPartition:
    """One partition of a table's changelog, as of its last complete flush.

    A flush writes every changed customer, then the partition record (``~partition``)
    last; so the newest value of each key up to the last partition record is a
    consistent state, and records after it belong to a flush still being written.
    Feed it the partition's records in offset order with :meth:`add`.
    """

    partition: int
    #: Newest value of each key, up to and including the last partition record.
    records: dict[bytes, bytes] = field(default_factory=dict)
    _tail: dict[bytes, bytes | None] = field(default_factory=dict, repr=False)

    def add(self, key: bytes | None, value: bytes | None) -> None:
        """Take the next record (a None value deletes the key, as Faust writes it)."""
        if key is None:
            return
        tail = self._tail
        tail[key] = value
        if key == META_KEY:
            records = self.records
            for k, v in tail.items():
                if v is None:
                    records.pop(k, None)
                else:
                    records[k] = v
            tail.clear()

    @property
    def meta(self) -> bytes | None:
        """The partition record, or None if no flush has completed."""
        return self.records.get(META_KEY)

    @property
    def unfinished(self) -> int:
        """Keys written after the last partition record (a flush in progress), left out."""
        return len(self._tail)


async def read_changelog(kafka: KafkaConnection,
                         topic: str) -> dict[int, ChangelogPartition] | None:
    """Every partition of a table's changelog as of its last complete flush; None if missing.

    End offsets come from :func:`app.kafka.admin.true_end_offsets` (the embedded
    broker's ListOffsets is wrong, BROKER.md fact 2); records written meanwhile are not read.
    """
    counts = await topic_partitions(kafka, [topic])
    if topic not in counts:
        return None
    stops = await end_offsets(kafka, topic, counts[topic])
    parts = {p: ChangelogPartition(p) for p in stops}
    async for partition, records in stream_topic(kafka, topic, stops):
        add = parts[partition].add
        for record in records:
            add(record.key, record.value)
    return parts


def load_kind(state: KindState[Any], part: ChangelogPartition,
              on_corrupt: Callable[[bytes, str], None] | None = None) -> int:
    """Load a changelog partition into an empty kind state with the core's own decoder.

    A record the core cannot load (txstream did not write it, or it is damaged) is
    skipped and passed to ``on_corrupt`` with its key and reason. Returns the count loaded.
    """
    loaded = 0
    for key, value in part.records.items():
        try:
            state.load(key, value)
        except CorruptRecord as exc:
            if on_corrupt is not None:
                on_corrupt(key, str(exc))
            continue
        loaded += 1
    state.finish_load()
    return loaded
