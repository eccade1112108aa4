"""Send transactions to the input topic: from the generator at a rate, or from a file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.exceptions import BrokerError

from .connect import outage_error, start_client
from .security import KafkaConnection

__all__ = ["send_records"]


async def send_records(kafka: KafkaConnection, topic: str,
                       records: Iterable[tuple[bytes | None, bytes, int | None]], *,
                       rate: float | None = None,
                       on_progress: Callable[[int], None] | None = None) -> int:
    """Send ``(key, value, timestamp_ms)`` records keyed by customer; ``rate`` paces them.

    The timestamp is the record's event time (None: the broker's clock).

    The default partitioner hashes the key as Faust's router does, so a customer's records
    land in the partition whose worker answers for that customer. Returns the count sent.
    Records not acknowledged within ``kafka.connect_timeout`` (the broker went away) end
    it with a BrokerError saying how many were.
    """
    wait_ms = max(1000, int(kafka.connect_timeout * 1000))
    producer = await start_client(lambda: AIOKafkaProducer(**kafka.client_kwargs(
        linger_ms=20, max_batch_size=512 * 1024, acks="all", request_timeout_ms=wait_ms)),
        kafka)
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
        raise BrokerError(
            f"{outage_error(kafka, exc)}; the first {acknowledged:,} record(s) were "
            f"acknowledged; of the {sent - acknowledged:,} sent after them, some may have "
            "arrived (sending them again is safe: a repeated tx_id is skipped within "
            "TXSTREAM_DUPLICATE_HORIZON)") from None
    finally:
        await producer.stop()
    return sent
