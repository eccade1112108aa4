"""AlertsTail: the most recent alerts of every partition, read from the alerts topic."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.exceptions import InvalidRecord
from app.kafka.admin import true_end_offsets
from app.kafka.connect import start_client
from app.kafka.security import KafkaConnection
from app.records.readback import ReadAlert, decode_alert
from app.skipped import SkippedRecords

__all__ = ["AlertsTail"]

logger = logging.getLogger(__name__)


class AlertsTail:
    """Follows the whole ``alerts`` topic (no consumer group), so any worker can list them.

    Alerts are produced by whichever worker owns a customer's partition; reading the topic
    itself gives every worker the same answer, and repeated deliveries of one alert (same
    deterministic id) are shown once.
    """

    def __init__(self, kafka: KafkaConnection, topic: str, keep: int = 1000,
                 skipped: SkippedRecords | None = None) -> None:
        self.kafka = kafka
        self.topic = topic
        self.keep = keep
        self.skipped = skipped if skipped is not None else SkippedRecords()
        self._alerts: dict[str, ReadAlert] = {}
        self._order: deque[str] = deque()
        self.ready = asyncio.Event()

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` alerts, most recent event time first."""
        alerts = sorted(self._alerts.values(), key=lambda a: (a[0], a[1]["alert_id"]),
                        reverse=True)
        return [alert for _, alert in alerts[:limit]]

    def __len__(self) -> int:
        return len(self._alerts)

    def _add(self, value: bytes | None, where: str = "?") -> None:
        # Anyone who can write to the topic can put anything there: only records that
        # are alerts as txstream writes them are kept and served.
        try:
            read = decode_alert(value)
        except InvalidRecord as exc:
            self.skipped.skip(self.topic, where, exc.reason)
            return
        alert_id = read[1]["alert_id"]
        if alert_id not in self._alerts:
            self._order.append(alert_id)
        self._alerts[alert_id] = read
        while len(self._order) > self.keep:
            self._alerts.pop(self._order.popleft(), None)

    async def run(self) -> None:
        """Read from ``keep`` records before the end of each partition, then follow."""
        consumer = await start_client(lambda: AIOKafkaConsumer(**self.kafka.client_kwargs(
            enable_auto_commit=False, group_id=None)), self.kafka)
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            while not partitions:
                await asyncio.sleep(0.5)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            ends = await true_end_offsets(self.kafka, tps)
            for tp in tps:
                consumer.seek(tp, max(0, ends.get(tp, 0) - self.keep))
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, records in batches.items():
                    for record in records:
                        self._add(record.value, f"{tp.partition}/{record.offset}")
        finally:
            await consumer.stop()
