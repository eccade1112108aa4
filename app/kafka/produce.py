"""Send transactions to the input topic: from the generator at a rate, or from a file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.exceptions import BrokerError

from .waiting import unreachable, until_reachable

__all__ = ["send_records"]


async def send_records(bootstrap: str, topic: str,
                       records: Iterable[tuple[bytes | None, bytes, int | None]], *,
                       rate: float | None = None,
                       on_progress: Callable[[int], None] | None = None,
                       wait_s: float = 60.0) -> int:
    """Send ``(key, value, timestamp_ms)`` records keyed by customer; ``rate`` paces them.

    The timestamp is the record's event time (None: the broker's clock).

    The default partitioner hashes the key as Faust's router does, so a customer's records
    land in the partition whose worker answers for that customer. Returns the count sent.
    A broker that does not answer for ``wait_s`` seconds (at the start, or while records
    wait to be acknowledged) ends it with a BrokerError saying how many were acknowledged.
    """

    async def start() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                    max_batch_size=512 * 1024, acks="all",
                                    request_timeout_ms=max(1000, int(wait_s * 1000)))
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    producer = await until_reachable(bootstrap, wait_s, start)
    sent = acknowledged = 0
    started = time.monotonic()
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value, timestamp_ms in records:
            pending.append(await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms))
            sent += 1
            if rate is not None:
                due = started + sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
                acknowledged = sent
                if on_progress is not None:
                    on_progress(sent)
        await producer.flush()
        if pending:
            await asyncio.gather(*pending)
        acknowledged = sent
        if on_progress is not None:
            on_progress(sent)
    except KafkaError as exc:
        error = unreachable(bootstrap, wait_s, exc)
        raise BrokerError(
            f"{error}; the first {acknowledged:,} record(s) were acknowledged; of the "
            f"{sent - acknowledged:,} sent after them, some may have arrived") from None
    finally:
        await producer.stop()
    return sent
