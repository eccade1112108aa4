"""Metrics: this worker's counters and gauges, in the Prometheus text exposition format."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faust.types import TP
from faust.web import Request, Response, View

from tables.watermark import NO_WATERMARK

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = [
    "CONTENT_TYPE",
    "MetricFamily",
    "install_metrics",
    "metric_families",
    "render",
    "worker_snapshot",
]

#: Content type of the text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str | int]


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _recovery_rows(highwaters: Mapping[Any, int | None],
                   offsets: Mapping[Any, int | None]) -> list[dict[str, Any]]:
    rows = []
    for tp, highwater in sorted(highwaters.items()):
        offset = offsets.get(tp)
        hw = -1 if highwater is None else highwater
        done = -1 if offset is None else offset
        rows.append({"topic": tp.topic, "partition": tp.partition, "highwater": hw,
                     "offset": done, "remaining": max(0, hw - done)})
    return rows


def worker_snapshot(app: TxApp, started: float, now_ms: int | None = None) -> dict[str, Any]:
    """Everything ``/metrics`` reports about this worker, as plain data (ms, counts)."""
    pipeline = app.pipeline
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    consumer = app.consumer
    source = app.topic_names.transactions
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    if recovery.completed.is_set():
        # An assigned partition that has had no input since this process started still
        # has its state in the tables: load it as the customer views do.
        for tp in consumer.assignment():
            if tp.topic == source:
                pipeline.state_for(tp.partition)
    partitions = []
    for partition, state in sorted(pipeline.states.items()):
        seen = state.max_event_ms != NO_WATERMARK
        wall = state.tumbling.watermark.wall_at_input
        lag = _consumer_lag(consumer, source, partition, state.tumbling.offset)
        partitions.append({
            "partition": partition,
            "events": state.counter("events"),
            "dead_letters": state.counter("dead_letters"),
            "duplicates": state.counter("duplicates"),
            "duplicate_conflicts": state.counter("conflicts"),
            "remembered_tx_ids": state.txids.remembered,
            "late": state.late_counts(),
            "watermark_ms": state.watermark if seen else None,
            "max_event_ms": state.max_event_ms if seen else None,
            "event_time_lag_seconds": (now_ms - state.max_event_ms) / 1000 if seen else None,
            "idle_seconds": (now_ms - wall) / 1000 if wall is not None else None,
            "consumer_lag": lag,
            "customers": {kind: len(kind_state.customers)
                          for kind, kind_state in state.kinds.items()},
        })
    return {
        "worker": str(app.conf.canonical_url),
        "now_ms": now_ms,
        "uptime_seconds": round(time.monotonic() - started, 3),
        "events_per_second": round(pipeline.throughput.rate(), 3),
        "records_received": pipeline.throughput.total,
        "kinds": list(app.settings.window_kind_list),
        "partitions": partitions,
        "outputs": pipeline.outputs_sent.snapshot(),
        "skipped_records": app.skipped_records.snapshot(),
        "broker": app.broker_monitor.snapshot(now_ms),
        "recovery": {
            "in_progress": bool(recovery.in_recovery),
            "completed": recovery.completed.is_set(),
            "active": _recovery_rows(recovery.active_highwaters, recovery.active_offsets),
            "standby": _recovery_rows(recovery.standby_highwaters, recovery.standby_offsets),
        },
    }


def _consumer_lag(consumer: Any, topic: str, partition: int, applied: int) -> int | None:
    """Records of the source partition not applied yet, from the last fetch's high watermark."""
    try:
        highwater = consumer.highwater(TP(topic, partition))
    except Exception:  # no fetch yet, or partition not assigned to the fetcher
        return None
    if highwater is None:
        return None
    return max(0, int(highwater) - (applied + 1))


# -- exposition -----------------------------------------------------------------------------


@dataclass
class MetricFamily:
    """One metric: name, type, help text and its samples ``(labels, value)``."""

    name: str
    type: str
    help: str
    samples: list[tuple[Labels, float | int]] = field(default_factory=list)

    def add(self, value: float | int | None, **labels: str | int) -> None:
        """Add a sample; ``None`` (unknown) adds nothing."""
        if value is not None:
            self.samples.append((labels, value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float | int) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: Iterable[MetricFamily]) -> str:
    """The text exposition format (version 0.0.4) of ``families``."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            if labels:
                text = ",".join(f'{key}="{_escape_label(str(val))}"'
                                for key, val in labels.items())
                lines.append(f"{family.name}{{{text}}} {_format_value(value)}")
            else:
                lines.append(f"{family.name} {_format_value(value)}")
    return "\n".join(lines) + "\n"


def metric_families(snapshot: Mapping[str, Any]) -> list[MetricFamily]:
    """The metric families of one :func:`worker_snapshot`."""
    def family(name: str, kind: str, text: str) -> MetricFamily:
        return MetricFamily(f"txstream_{name}", kind, text)

    events = family("events_total", "counter",
                    "Valid transactions applied to a source partition's state "
                    "(exactly once per source offset; persisted with the state).")
    dead = family("dead_letters_total", "counter",
                  "Source records sent to the dead-letter topic: invalid ones and duplicates "
                  "with other content (once per source offset; persisted with the state).")
    duplicates = family("duplicates_total", "counter",
                        "Records skipped as duplicates: a tx_id applied earlier within the "
                        "duplicate horizon, with the same content (persisted with the state).")
    conflicts = family("duplicate_conflicts_total", "counter",
                       "Records dead-lettered because their tx_id was applied earlier with "
                       "other content (also in txstream_dead_letters_total).")
    remembered = family("remembered_tx_ids", "gauge",
                        "tx_ids a partition's duplicate check holds in memory: those within the "
                        "horizon, and expired ones until their flush's segment leaves.")
    late = family("late_events_total", "counter",
                  "Events that arrived after their window of this kind had closed.")
    customers = family("table_customers", "gauge",
                       "Customers held in a window kind's table for a partition.")
    watermark = family("watermark_seconds", "gauge",
                       "Partition watermark: highest event time seen minus the allowed "
                       "lateness (Unix seconds).")
    max_event = family("max_event_time_seconds", "gauge",
                       "Highest event time seen in a partition (Unix seconds).")
    event_lag = family("event_time_lag_seconds", "gauge",
                       "Wall clock minus the highest event time seen in a partition.")
    idle = family("partition_idle_seconds", "gauge",
                  "Wall-clock seconds since a partition last received a batch (this process).")
    consumer_lag = family("consumer_lag_records", "gauge",
                          "Source records not yet applied: high watermark of the last fetch "
                          "minus the next offset to apply.")
    for row in snapshot["partitions"]:
        p = row["partition"]
        events.add(row["events"], partition=p)
        dead.add(row["dead_letters"], partition=p)
        duplicates.add(row.get("duplicates"), partition=p)
        conflicts.add(row.get("duplicate_conflicts"), partition=p)
        remembered.add(row.get("remembered_tx_ids"), partition=p)
        for kind, count in row["late"].items():
            late.add(count, partition=p, kind=kind)
        for kind, count in row["customers"].items():
            customers.add(count, partition=p, kind=kind)
        watermark.add(_seconds(row["watermark_ms"]), partition=p)
        max_event.add(_seconds(row["max_event_ms"]), partition=p)
        event_lag.add(row["event_time_lag_seconds"], partition=p)
        idle.add(row["idle_seconds"], partition=p)
        consumer_lag.add(row["consumer_lag"], partition=p)

    outputs = snapshot["outputs"]
    alerts = family("alerts_total", "counter",
                    "Alerts sent to the alerts topic by this process, per source partition.")
    for p, count in outputs["alerts"].items():
        alerts.add(count, partition=p)
    results = family("window_results_total", "counter",
                     "Final window aggregates sent to the window-results topic by this "
                     "process, per source partition and window kind.")
    for row in outputs["window_results"]:
        results.add(row["count"], partition=row["partition"], kind=row["kind"])
    sessions = family("sessions_total", "counter",
                      "Closed sessions sent to the sessions topic by this process.")
    for p, count in outputs["sessions"].items():
        sessions.add(count, partition=p)
    late_sent = family("late_records_total", "counter",
                       "Records sent to the late-transactions topic by this process.")
    for p, count in outputs["late"].items():
        late_sent.add(count, partition=p)

    skipped = family("skipped_records_total", "counter",
                     "Records of topics txstream reads back (alerts, changelogs) that it could "
                     "not use and skipped (this process).")
    for topic, count in snapshot.get("skipped_records", {}).items():
        skipped.add(count, topic=topic)
    broker = snapshot.get("broker")
    reachable = family("broker_reachable", "gauge",
                       "1 while the broker answers this worker's probes (every second), "
                       "0 during an outage.")
    outages = family("broker_outages_total", "counter",
                     "Times the broker stopped answering since this worker started.")
    down_for = family("broker_unreachable_seconds", "gauge",
                      "Seconds since the broker stopped answering (0 while it answers).")
    if broker is not None and broker["reachable"] is not None:
        reachable.add(int(broker["reachable"]))
        outages.add(broker["outages"])
        down_for.add(0.0 if broker["reachable"] else float(broker["for_seconds"] or 0.0))
    received = family("records_received_total", "counter",
                      "Source records this process took from the consumer "
                      "(valid or not; a redelivered record counts again).")
    received.add(snapshot["records_received"])
    rate = family("events_per_second", "gauge",
                  "Source records per second over the last 10 seconds (this process).")
    rate.add(float(snapshot["events_per_second"]))
    uptime = family("uptime_seconds", "gauge", "Seconds since this worker's web views started.")
    uptime.add(float(snapshot["uptime_seconds"]))

    recovery = snapshot["recovery"]
    in_progress = family("recovery_in_progress", "gauge",
                         "1 while this worker is recovering tables from their changelogs.")
    in_progress.add(int(recovery["in_progress"]))
    completed = family("recovery_completed", "gauge",
                       "1 once the active tables of the current assignment are recovered.")
    completed.add(int(recovery["completed"]))
    highwater = family("recovery_highwater", "gauge",
                       "Offset of the last changelog record when recovery of a changelog "
                       "partition started.")
    offset = family("recovery_offset", "gauge",
                    "Offset of the last changelog record applied to the local table.")
    remaining = family("recovery_remaining_records", "gauge",
                       "Changelog records still to apply (highwater minus offset, at least 0).")
    for role in ("active", "standby"):
        for row in recovery[role]:
            labels = {"role": role, "topic": row["topic"], "partition": row["partition"]}
            highwater.add(row["highwater"], **labels)
            offset.add(row["offset"], **labels)
            remaining.add(row["remaining"], **labels)

    return [events, dead, duplicates, conflicts, late, alerts, results, sessions, late_sent,
            skipped, reachable, outages, down_for, received, rate, event_lag, consumer_lag,
            idle, watermark, max_event, customers, remembered, uptime,
            in_progress, completed, highwater, offset, remaining]


def install_metrics(app: TxApp) -> None:
    """Serve ``GET /metrics``: this worker's partitions (scrape every worker and sum)."""
    started = time.monotonic()

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus metrics of the partitions this worker owns."""

        async def get(self, request: Request) -> Response:
            text = render(metric_families(worker_snapshot(app, started)))
            return self.bytes(text.encode(), headers={"Content-Type": CONTENT_TYPE,
                                                      "Cache-Control": "no-store"})
