"""Topic creation and true end offsets, working around the embedded broker's bugs."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from app.exceptions import BrokerError

from .connect import start_client, stop_client
from .security import KafkaConnection

__all__ = ["ensure_topics", "true_end_offsets"]

_POLL_INTERVAL = 0.1


def _topic_configs(name: str, compact: Collection[str]) -> dict[str, str]:
    """Explicit configs for a new topic."""
    # Every key is set explicitly because Tansu's DescribeConfigs returns nothing for
    # a topic created without configs, and peers (Quix Streams) fail on that (fact 8).
    return {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "compact" if name in compact else "delete",
    }


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Partition count of every topic the broker lists without an error."""
    # Metadata for *all* topics: naming a missing topic in a metadata request makes
    # Tansu auto-create it with 4 partitions (fact 5).
    described: list[dict[str, Any]] = await admin.describe_topics(None)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def _check_counts(expected: Mapping[str, int], actual: Mapping[str, int]) -> None:
    """Raise BrokerError for the first existing topic with the wrong partition count."""
    for name, want in expected.items():
        have = actual.get(name)
        if have is not None and have != want:
            raise BrokerError(f"topic {name!r} exists with {have} partitions, expected {want}")


async def ensure_topics(
    kafka: KafkaConnection,
    topics: Mapping[str, int],
    *,
    compact: Collection[str] = (),
    timeout: float = 30.0,
    replication_factor: int = 1,
) -> None:
    """Create the missing topics (name -> partitions) and wait until metadata shows them.

    An existing topic with the expected partition count is left alone; one with a
    different count raises BrokerError.
    """
    if not topics:
        return
    admin = await start_client(lambda: AIOKafkaAdminClient(
        **kafka.client_kwargs(request_timeout_ms=max(1000, int(timeout * 1000)))), kafka)
    try:
        async with asyncio.timeout(timeout):
            existing = await _partition_counts(admin)
            _check_counts(topics, existing)
            missing = [name for name in topics if name not in existing]
            if missing:
                await _create(admin, topics, missing, compact, replication_factor)
            await _wait_visible(admin, topics)
    except TimeoutError as exc:
        raise BrokerError(
            f"creating topics {sorted(topics)} on {kafka} did not finish in {timeout} s"
        ) from exc
    except KafkaError as exc:
        raise BrokerError(
            f"creating topics {sorted(topics)} on {kafka} failed: {exc!r}"
        ) from exc
    finally:
        await admin.close()


async def _create(
    admin: AIOKafkaAdminClient,
    topics: Mapping[str, int],
    missing: list[str],
    compact: Collection[str],
    replication_factor: int,
) -> None:
    """Send one CreateTopics request; a topic created concurrently by someone else is fine."""
    new = [
        NewTopic(
            name,
            topics[name],
            replication_factor,
            topic_configs=_topic_configs(name, compact),
        )
        for name in missing
    ]
    response = await admin.create_topics(new)
    for result in response.topic_errors:
        name, code = result[0], result[1]
        error = for_code(code)
        if code == 0 or error is TopicAlreadyExistsError:
            # Lost a race with another creator: _wait_visible checks its partition count.
            continue
        message = result[2] if len(result) > 2 and result[2] else error.__name__
        raise BrokerError(f"cannot create topic {name!r}: {message}")


async def _wait_visible(admin: AIOKafkaAdminClient, topics: Mapping[str, int]) -> None:
    """Poll metadata until every topic shows up with its partition count."""
    while True:
        counts = await _partition_counts(admin)
        _check_counts(topics, counts)
        if all(name in counts for name in topics):
            return
        # The caller's asyncio.timeout bounds this loop.
        await asyncio.sleep(_POLL_INTERVAL)


async def true_end_offsets(
    kafka: KafkaConnection,
    tps: Collection[TopicPartition],
    timeout: float = 10.0,
) -> dict[TopicPartition, int]:
    """The offset of each partition's last record + 1 (0 for an empty partition).

    Tansu's ListOffsets(LATEST) answers the base offset of the newest batch + 1, which
    is short for a multi-record batch (BROKER.md fact 2), but its Fetch responses carry
    the right highwater. So: ask ListOffsets, then fetch from ``reported - 1`` (the start
    of the newest batch on Tansu, the last record on Kafka) and take the largest of the
    reported offset, the fetch highwater and the last fetched record's offset + 1.
    Correct on Apache Kafka too, where the reported offset is already right.

    Naming a topic that does not exist makes Tansu auto-create it (fact 5).
    """
    wanted = list(dict.fromkeys(tps))
    if not wanted:
        return {}
    consumer = await start_client(lambda: AIOKafkaConsumer(**kafka.client_kwargs(
        group_id=None,  # no group: nothing is committed and no rebalance is waited for
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Partitions that are already read to the end should not hold each fetch long.
        fetch_max_wait_ms=50,
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )), kafka)
    try:
        async with asyncio.timeout(timeout):
            reported: dict[TopicPartition, int] = await consumer.end_offsets(wanted)
            result = {tp: reported[tp] for tp in wanted}
            nonempty = [tp for tp in wanted if reported[tp] > 0]
            if nonempty:
                await _read_tails(consumer, nonempty, reported, result)
            return result
    except TimeoutError as exc:
        raise BrokerError(
            f"reading end offsets of {len(wanted)} partitions on {kafka} "
            f"did not finish in {timeout} s"
        ) from exc
    except KafkaError as exc:
        raise BrokerError(f"reading end offsets on {kafka} failed: {exc!r}") from exc
    finally:
        await stop_client(consumer)


async def _read_tails(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    reported: Mapping[TopicPartition, int],
    result: dict[TopicPartition, int],
) -> None:
    """Fetch each partition's tail and raise ``result`` to what the fetches prove."""
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, reported[tp] - 1)
    pending = set(tps)
    # The caller's asyncio.timeout bounds this loop.
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=100)
        for tp, records in batches.items():
            if records:
                result[tp] = max(result[tp], records[-1].offset + 1)
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # no fetch response for it yet
            result[tp] = max(result[tp], highwater)
            # Done once everything up to the highwater has been read; the position
            # also moves past control batches, which carry no records.
            if await consumer.position(tp) >= highwater:
                pending.discard(tp)
