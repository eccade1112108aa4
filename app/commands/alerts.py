"""``txstream alerts``: print alerts as they arrive, one JSON object per line, repeats dropped."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from app.txapp import TxApp

from .usage import exit_with

__all__ = ["register"]


def register(app: TxApp) -> None:
    """Define the ``alerts`` command on the app's CLI."""

    @app.command()
    async def alerts(self: Any) -> None:
        """Print alerts as they arrive (one JSON object per line)."""
        await exit_with("alerts", _follow(), app.kafka)

    async def _follow() -> int:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from app.kafka.admin import ensure_topics, true_end_offsets
        from app.kafka.connect import start_client

        topic = app.topic_names.alerts
        await ensure_topics(app.kafka, {topic: app.settings.partitions})
        consumer = await start_client(
            lambda: AIOKafkaConsumer(**app.kafka.client_kwargs(group_id=None)), app.kafka)
        try:
            # Start exactly at the end of every partition (seek-to-end can land inside the
            # last batch on the embedded broker and print old alerts).
            tps = [TopicPartition(topic, p) for p in sorted(
                consumer.partitions_for_topic(topic) or range(app.settings.partitions))]
            consumer.assign(tps)
            for tp, end in (await true_end_offsets(app.kafka, tps)).items():
                consumer.seek(tp, end)
            print(f"listening for alerts on {topic} (Ctrl-C stops)", file=sys.stderr,
                  flush=True)
            seen: set[str] = set()
            async for record in consumer:
                alert = orjson.loads(record.value)
                if alert.get("alert_id") in seen:
                    continue  # a repeat after a crash: same deterministic id
                seen.add(alert.get("alert_id"))
                print(orjson.dumps(alert).decode(), flush=True)
        finally:
            await consumer.stop()
        return 0
