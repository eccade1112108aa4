"""Pre-load the benchmark's transactions: generate them once, send them in large batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from aiokafka import TopicPartition

from app.commands.generator import GeneratorConfig, generate
from app.kafka.admin import ensure_topics, true_end_offsets
from app.kafka.security import KafkaConnection
from app.records.transaction import encode_transaction, transaction_key

__all__ = ["LoadSpec", "load_topic", "make_records"]

#: A record as sent: key, value, Kafka timestamp (the event time, as the producer CLI does).
Record = tuple[bytes, bytes, int]


@dataclass(frozen=True)
class LoadSpec:
    """What to pre-load: the generator's knobs, chosen for a realistic, disordered stream."""

    events: int = 200_000
    customers: int = 10_000
    seed: int = 7
    #: Event-time span of the whole data set ("a few hours").
    span_ms: int = 3 * 3_600_000
    #: Uniform delay of each event behind its nominal time: disorder within the 5 s lateness.
    max_delay_ms: int = 3_000
    #: Roughly every N events, one customer's device sends a burst of old purchases.
    tunnel_every: int = 5_000
    tunnel_size: int = 30
    tunnel_age_ms: int = 10 * 60_000
    #: Event time of the first event (fixed, so every run sees the same data).
    start_ms: int = 1_773_300_000_000  # 2026-03-12T07:20:00Z

    def config(self) -> GeneratorConfig:
        """The generator config that yields this data set."""
        return GeneratorConfig(
            start_ms=self.start_ms, events_per_second=self.events * 1000 / self.span_ms,
            count=self.events, customers=self.customers, seed=self.seed,
            max_delay_ms=self.max_delay_ms, tunnel_every=self.tunnel_every,
            tunnel_size=self.tunnel_size, tunnel_age_ms=self.tunnel_age_ms)

    def describe(self) -> dict[str, int]:
        """The spec as JSON-able numbers."""
        return asdict(self)


def make_records(spec: LoadSpec) -> list[Record]:
    """Every record of the data set, in send order."""
    return [(transaction_key(tx), encode_transaction(tx), tx.event_time_ms)
            for tx in generate(spec.config())]


def _send_confluent(kafka: KafkaConnection, topic: str, records: list[Record]) -> None:
    from confluent_kafka import Producer

    producer = Producer({
        **kafka.librdkafka_config(),
        # aiokafka's (and so Faust's) default partitioner: murmur2 of the key. librdkafka's
        # default (crc32) would put customers on other partitions than Faust routes to.
        "partitioner": "murmur2_random",
        "linger.ms": 50,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "acks": "all",
        "enable.idempotence": False,  # the embedded broker has no idempotent producers
    })
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    produce = producer.produce
    for i, (key, value, timestamp) in enumerate(records):
        produce(topic, value, key, timestamp=timestamp, on_delivery=on_delivery)
        if i % 20_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining or errors:
        message = f"pre-load failed: {remaining} undelivered, errors: {errors[:3]}"
        raise RuntimeError(message)


async def _send_aiokafka(kafka: KafkaConnection, topic: str, records: list[Record]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka.client_kwargs(linger_ms=50, max_batch_size=1 << 20,
                                                      acks="all"))
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value, timestamp in records:
            pending.append(await producer.send(topic, value, key=key, timestamp_ms=timestamp))
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _have_confluent() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


async def load_topic(kafka: KafkaConnection, topic: str, records: list[Record], partitions: int,
                     say: Callable[[str], None] = print) -> dict[str, object]:
    """Create ``topic`` (explicit retention, BROKER.md fact 8) and send ``records`` to it.

    Returns what happened: the client used, the load rate and the per-partition counts
    (read back as the true end offsets, so a short load is caught here, not in a result).
    """
    await ensure_topics(kafka, {topic: partitions})
    client = "confluent-kafka" if _have_confluent() else "aiokafka"
    started = time.perf_counter()
    if client == "confluent-kafka":
        # librdkafka has its own threads; run the blocking produce loop off the event loop.
        await asyncio.to_thread(_send_confluent, kafka, topic, records)
    else:
        await _send_aiokafka(kafka, topic, records)
    seconds = time.perf_counter() - started
    ends = await true_end_offsets(kafka, [TopicPartition(topic, p)
                                              for p in range(partitions)])
    total = sum(ends.values())
    if total != len(records):
        message = f"{topic} holds {total} records after loading {len(records)}"
        raise RuntimeError(message)
    rate = len(records) / seconds if seconds > 0 else float("inf")
    say(f"loaded {len(records):,} records into {topic} with {client} in {seconds:.2f} s "
        f"({rate:,.0f}/s); per partition {[ends[tp] for tp in sorted(ends)]}")
    return {"client": client, "seconds": round(seconds, 3), "records_per_second": round(rate),
            "per_partition": {str(tp.partition): n for tp, n in sorted(ends.items())}}
