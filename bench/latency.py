"""End-to-end latency: send a transaction that crosses the alert threshold, see its alert.

A fresh worker (all kinds) on fresh topics gets live traffic at a fixed rate below its
capacity, event time = send time. Every ``trigger_every``-th record is a purchase of
6,000 PLN by a customer never seen before, so its tumbling window crosses the 5,000 PLN
threshold at once and the worker sends one alert carrying that ``tx_id``. Latency = the
wall time this process reads the alert from ``alerts`` minus the wall time just before
it handed the record to its producer: fetch, parse, core, alert produce, and the alert
consumer's fetch, all included. Triggers of the first ``warmup`` seconds are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import statistics
import time
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka.admin import ensure_topics
from app.process import free_port
from app.records.transaction import Transaction, encode_transaction, transaction_key
from app.topics import TopicNames

from .procs import memory_kb
from .targets import Context, get_json, start_worker, worker_env

__all__ = ["run_latency"]

#: Trigger customers get ids far above the generated ones.
_TRIGGER_BASE = 50_000_000


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def _consume_alerts(consumer: AIOKafkaConsumer, received: dict[str, float],
                          stop: asyncio.Event) -> None:
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=50, max_records=1000)
        now = time.time()
        for records in batches.values():
            for record in records:
                tx_id = orjson.loads(record.value).get("tx_id")
                if tx_id is not None and tx_id not in received:
                    received[tx_id] = now


async def run_latency(ctx: Context, run: int, *, rate: float = 2000.0, seconds: float = 20.0,
                      trigger_every: int = 20, warmup: float = 2.0,
                      customers: int = 10_000) -> dict[str, Any]:
    """Start a worker on its own topics, drive it at ``rate``/s, return latency percentiles."""
    name = f"latency-r{run}"
    topics = TopicNames(f"{ctx.topics.prefix}lat{run}-")
    await ensure_topics(ctx.kafka, dict.fromkeys(topics.all(), ctx.partitions))
    app_id = f"{ctx.stamp}-{name}"
    datadir = ctx.workdir / f"{name}-data"
    port = free_port()
    process = start_worker(ctx, name, worker_env(ctx, app_id, port, datadir, topics=topics))
    producer = AIOKafkaProducer(**ctx.kafka.client_kwargs(linger_ms=1, acks="all"))
    consumer = AIOKafkaConsumer(**ctx.kafka.client_kwargs(), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=20)
    try:
        process.wait_for_log(r"Worker ready", ctx.timeout)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                try:
                    if (await get_json(session, f"http://127.0.0.1:{port}/stats/"))[0] == 200:
                        break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        await producer.start()
        await consumer.start()
        tps = [TopicPartition(topics.alerts, p) for p in range(ctx.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        received: dict[str, float] = {}
        stop = asyncio.Event()
        reader = asyncio.create_task(_consume_alerts(consumer, received, stop))

        rng = random.Random(run)
        sent: dict[str, float] = {}
        pending: list[asyncio.Future[Any]] = []
        started = time.monotonic()
        count = 0
        total = int(rate * seconds)
        while count < total:
            due = started + count / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now_ms = int(time.time() * 1000)
            if count % trigger_every == 0:
                tx = Transaction(f"lat-{run}-{count}", _TRIGGER_BASE + count, 600_000, "PLN",
                                 now_ms)
            else:
                # Everyday purchases: at most ~4 per customer in the run, far below 5,000 PLN.
                tx = Transaction(f"bg-{run}-{count}", rng.randint(1, customers),
                                 rng.randint(100, 30_000), "PLN",
                                 now_ms - rng.randint(0, 3000))
            key, value = transaction_key(tx), encode_transaction(tx)
            if count % trigger_every == 0 and time.monotonic() - started >= warmup:
                sent[tx.tx_id] = time.time()
            pending.append(await producer.send(topics.transactions, value, key=key,
                                               timestamp_ms=tx.event_time_ms))
            count += 1
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
        wait_until = time.monotonic() + 10
        while time.monotonic() < wait_until and not sent.keys() <= received.keys():
            await asyncio.sleep(0.1)
        stop.set()
        await reader
        achieved = count / (time.monotonic() - started)
        latencies = [(received[t] - s) * 1000 for t, s in sent.items() if t in received]
        peak = memory_kb(process.pid).get("VmHWM", 0)
        return {
            "rate_target": rate, "rate_achieved": round(achieved, 1),
            "seconds": seconds,
            "triggers_measured": len(sent), "alerts_matched": len(latencies),
            "p50_ms": round(percentile(latencies, 0.50), 1),
            "p90_ms": round(percentile(latencies, 0.90), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies), 1) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
            "peak_rss_mb": round(peak / 1024, 1),
        }
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await consumer.stop()
        process.terminate(timeout=15)
        shutil.rmtree(datadir, ignore_errors=True)
