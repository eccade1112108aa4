"""``txstream alerts``: print alerts as they arrive, one JSON object per line, repeats dropped."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from app.exceptions import InvalidRecord
from app.logs import install_repeat_filter
from app.records.readback import decode_alert
from app.txapp import TxApp

from .usage import exit_with

__all__ = ["register"]

#: Alert ids remembered to drop repeats.
_REMEMBERED = 100_000


def register(app: TxApp) -> None:
    """Define the ``alerts`` command on the app's CLI."""

    @app.command()
    async def alerts(self: Any) -> None:
        """Print alerts as they arrive (one JSON object per line)."""
        install_repeat_filter()
        await exit_with("alerts", _follow(app), app.kafka)


async def _follow(app: TxApp) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.kafka.admin import ensure_topics, true_end_offsets
    from app.kafka.connect import outage_error, start_client
    from app.kafka.monitor import BrokerMonitor

    kafka = app.kafka
    topic = app.topic_names.alerts
    await ensure_topics(kafka, {topic: app.settings.partitions})
    consumer = await start_client(
        lambda: AIOKafkaConsumer(**kafka.client_kwargs(group_id=None)), kafka)
    # aiokafka's consumer retries a lost broker for ever: this says when to give up.
    monitor = BrokerMonitor(kafka)
    watching = asyncio.create_task(monitor.run())
    try:
        # Start exactly at the end of every partition (seek-to-end can land inside the
        # last batch on the embedded broker and print old alerts).
        tps = [TopicPartition(topic, p) for p in sorted(
            consumer.partitions_for_topic(topic) or range(app.settings.partitions))]
        consumer.assign(tps)
        for tp, end in (await true_end_offsets(kafka, tps)).items():
            consumer.seek(tp, end)
        print(f"listening for alerts on {topic} (Ctrl-C stops)", file=sys.stderr, flush=True)
        # Ids of the alerts printed lately: a repeat comes soon after its first delivery,
        # so a bounded memory of them is enough for a command that runs for months.
        seen: dict[str, None] = {}
        skipped = 0
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            down = monitor.snapshot()
            if down["reachable"] is False and (down["for_seconds"] or 0) > kafka.connect_timeout:
                raise outage_error(kafka, monitor.last_error)
            for records in batches.values():
                for record in records:
                    try:
                        _, alert = decode_alert(record.value)
                    except InvalidRecord as exc:
                        # Not an alert txstream wrote: skipped, never fatal; told once.
                        if not skipped:
                            print(f"skipped a record at {record.partition}/{record.offset} "
                                  f"that is not an alert ({exc.reason}); further ones are "
                                  "skipped quietly", file=sys.stderr, flush=True)
                        skipped += 1
                        continue
                    if alert["alert_id"] in seen:
                        continue  # a repeat after a crash: same deterministic id
                    seen[alert["alert_id"]] = None
                    if len(seen) > _REMEMBERED:
                        del seen[next(iter(seen))]
                    print(orjson.dumps(alert).decode(), flush=True)
    finally:
        watching.cancel()
        await consumer.stop()
