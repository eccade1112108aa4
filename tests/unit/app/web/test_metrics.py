"""Prometheus exposition of a fixed worker snapshot: exact text, and it parses as Prometheus."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agents.counters import OutputCounters
from app.web.metrics import CONTENT_TYPE, MetricFamily, metric_families, render
from tables.outputs import Alert, Outputs, WindowResult

KINDS = ("tumbling", "hopping")


def _snapshot() -> dict[str, Any]:
    counters = OutputCounters()
    counters.add(0, Outputs(
        alerts=[Alert(7, 0, 300_000, 2, 500_001, 500_000, "t2", 1000)],
        results=[WindowResult("tumbling", 7, 0, 300_000, 2, 500_001, 1, 500_000),
                 WindowResult("hopping", 7, 0, 600_000, 2, 500_001, 1, 500_000),
                 WindowResult("hopping", 8, 0, 600_000, 1, 100, 100, 100)]))
    counters.add(1, Outputs())
    return {
        "worker": "http://127.0.0.1:6066",
        "now_ms": 1_773_324_310_000,
        "uptime_seconds": 12.5,
        "events_per_second": 1.5,
        "records_received": 9,
        "kinds": list(KINDS),
        "partitions": [
            {"partition": 0, "events": 5, "dead_letters": 2, "duplicates": 3,
             "duplicate_conflicts": 1, "remembered_tx_ids": 6,
             "late": {"tumbling": 1, "hopping": 0},
             "watermark_ms": 1_773_324_295_000, "max_event_ms": 1_773_324_300_000,
             "event_time_lag_seconds": 10.0, "idle_seconds": 0.25, "consumer_lag": 0,
             "customers": {"tumbling": 2, "hopping": 2}},
            {"partition": 1, "events": 0, "dead_letters": 0, "duplicates": 0,
             "duplicate_conflicts": 0, "remembered_tx_ids": 0,
             "late": {"tumbling": 0, "hopping": 0},
             "watermark_ms": None, "max_event_ms": None, "event_time_lag_seconds": None,
             "idle_seconds": None, "consumer_lag": None,
             "customers": {"tumbling": 0, "hopping": 0}},
        ],
        "outputs": counters.snapshot(),
        "skipped_records": {"t1-alerts": 2},
        "broker": {"reachable": False, "since_ms": 1_773_324_300_000, "for_seconds": 10.0,
                   "outages": 1, "last_error": "127.0.0.1:9092: ConnectionRefusedError"},
        "recovery": {
            "in_progress": False, "completed": True,
            "active": [{"topic": "txstream-v1-tumbling-changelog", "partition": 0,
                        "highwater": 41, "offset": 41, "remaining": 0}],
            "standby": [{"topic": "txstream-v1-tumbling-changelog", "partition": 1,
                         "highwater": 10, "offset": 7, "remaining": 3}],
        },
    }


EXPECTED = """\
# HELP txstream_events_total Valid transactions applied to a source partition's state \
(exactly once per source offset; persisted with the state).
# TYPE txstream_events_total counter
txstream_events_total{partition="0"} 5
txstream_events_total{partition="1"} 0
# HELP txstream_dead_letters_total Source records sent to the dead-letter topic: invalid ones \
and duplicates with other content (once per source offset; persisted with the state).
# TYPE txstream_dead_letters_total counter
txstream_dead_letters_total{partition="0"} 2
txstream_dead_letters_total{partition="1"} 0
# HELP txstream_duplicates_total Records skipped as duplicates: a tx_id applied earlier within \
the duplicate horizon, with the same content (persisted with the state).
# TYPE txstream_duplicates_total counter
txstream_duplicates_total{partition="0"} 3
txstream_duplicates_total{partition="1"} 0
# HELP txstream_duplicate_conflicts_total Records dead-lettered because their tx_id was applied \
earlier with other content (also in txstream_dead_letters_total).
# TYPE txstream_duplicate_conflicts_total counter
txstream_duplicate_conflicts_total{partition="0"} 1
txstream_duplicate_conflicts_total{partition="1"} 0
# HELP txstream_late_events_total Events that arrived after their window of this kind had closed.
# TYPE txstream_late_events_total counter
txstream_late_events_total{partition="0",kind="tumbling"} 1
txstream_late_events_total{partition="0",kind="hopping"} 0
txstream_late_events_total{partition="1",kind="tumbling"} 0
txstream_late_events_total{partition="1",kind="hopping"} 0
# HELP txstream_alerts_total Alerts sent to the alerts topic by this process, per source partition.
# TYPE txstream_alerts_total counter
txstream_alerts_total{partition="0"} 1
# HELP txstream_window_results_total Final window aggregates sent to the window-results topic \
by this process, per source partition and window kind.
# TYPE txstream_window_results_total counter
txstream_window_results_total{partition="0",kind="hopping"} 2
txstream_window_results_total{partition="0",kind="tumbling"} 1
# HELP txstream_sessions_total Closed sessions sent to the sessions topic by this process.
# TYPE txstream_sessions_total counter
# HELP txstream_late_records_total Records sent to the late-transactions topic by this process.
# TYPE txstream_late_records_total counter
# HELP txstream_skipped_records_total Records of topics txstream reads back (alerts, changelogs) \
that it could not use and skipped (this process).
# TYPE txstream_skipped_records_total counter
txstream_skipped_records_total{topic="t1-alerts"} 2
# HELP txstream_broker_reachable 1 while the broker answers this worker's probes (every second), \
0 during an outage.
# TYPE txstream_broker_reachable gauge
txstream_broker_reachable 0
# HELP txstream_broker_outages_total Times the broker stopped answering since this worker started.
# TYPE txstream_broker_outages_total counter
txstream_broker_outages_total 1
# HELP txstream_broker_unreachable_seconds Seconds since the broker stopped answering (0 while it \
answers).
# TYPE txstream_broker_unreachable_seconds gauge
txstream_broker_unreachable_seconds 10.0
# HELP txstream_records_received_total Source records this process took from the consumer \
(valid or not; a redelivered record counts again).
# TYPE txstream_records_received_total counter
txstream_records_received_total 9
# HELP txstream_events_per_second Source records per second over the last 10 seconds \
(this process).
# TYPE txstream_events_per_second gauge
txstream_events_per_second 1.5
# HELP txstream_event_time_lag_seconds Wall clock minus the highest event time seen in a partition.
# TYPE txstream_event_time_lag_seconds gauge
txstream_event_time_lag_seconds{partition="0"} 10.0
# HELP txstream_consumer_lag_records Source records not yet applied: high watermark of the last \
fetch minus the next offset to apply.
# TYPE txstream_consumer_lag_records gauge
txstream_consumer_lag_records{partition="0"} 0
# HELP txstream_partition_idle_seconds Wall-clock seconds since a partition last received a batch \
(this process).
# TYPE txstream_partition_idle_seconds gauge
txstream_partition_idle_seconds{partition="0"} 0.25
# HELP txstream_watermark_seconds Partition watermark: highest event time seen minus the allowed \
lateness (Unix seconds).
# TYPE txstream_watermark_seconds gauge
txstream_watermark_seconds{partition="0"} 1773324295.0
# HELP txstream_max_event_time_seconds Highest event time seen in a partition (Unix seconds).
# TYPE txstream_max_event_time_seconds gauge
txstream_max_event_time_seconds{partition="0"} 1773324300.0
# HELP txstream_table_customers Customers held in a window kind's table for a partition.
# TYPE txstream_table_customers gauge
txstream_table_customers{partition="0",kind="tumbling"} 2
txstream_table_customers{partition="0",kind="hopping"} 2
txstream_table_customers{partition="1",kind="tumbling"} 0
txstream_table_customers{partition="1",kind="hopping"} 0
# HELP txstream_remembered_tx_ids tx_ids a partition's duplicate check holds in memory: those \
within the horizon, and expired ones until their flush's segment leaves.
# TYPE txstream_remembered_tx_ids gauge
txstream_remembered_tx_ids{partition="0"} 6
txstream_remembered_tx_ids{partition="1"} 0
# HELP txstream_uptime_seconds Seconds since this worker's web views started.
# TYPE txstream_uptime_seconds gauge
txstream_uptime_seconds 12.5
# HELP txstream_recovery_in_progress 1 while this worker is recovering tables from their \
changelogs.
# TYPE txstream_recovery_in_progress gauge
txstream_recovery_in_progress 0
# HELP txstream_recovery_completed 1 once the active tables of the current assignment are \
recovered.
# TYPE txstream_recovery_completed gauge
txstream_recovery_completed 1
# HELP txstream_recovery_highwater Offset of the last changelog record when recovery of a \
changelog partition started.
# TYPE txstream_recovery_highwater gauge
txstream_recovery_highwater{role="active",topic="txstream-v1-tumbling-changelog",partition="0"} 41
txstream_recovery_highwater{role="standby",topic="txstream-v1-tumbling-changelog",partition="1"} 10
# HELP txstream_recovery_offset Offset of the last changelog record applied to the local table.
# TYPE txstream_recovery_offset gauge
txstream_recovery_offset{role="active",topic="txstream-v1-tumbling-changelog",partition="0"} 41
txstream_recovery_offset{role="standby",topic="txstream-v1-tumbling-changelog",partition="1"} 7
# HELP txstream_recovery_remaining_records Changelog records still to apply (highwater minus \
offset, at least 0).
# TYPE txstream_recovery_remaining_records gauge
txstream_recovery_remaining_records{role="active",topic="txstream-v1-tumbling-changelog",\
partition="0"} 0
txstream_recovery_remaining_records{role="standby",topic="txstream-v1-tumbling-changelog",\
partition="1"} 3
"""


def test_exposition__exact_text_of_a_fixed_snapshot() -> None:
    assert render(metric_families(_snapshot())) == EXPECTED


def test_exposition__parses_as_prometheus_text_with_the_same_values() -> None:
    families = {f.name: f for f in text_string_to_metric_families(EXPECTED)}
    # The parser names a counter family without its _total suffix.
    assert families["txstream_events"].type == "counter"
    assert families["txstream_watermark_seconds"].type == "gauge"
    events = {s.labels["partition"]: s.value for s in families["txstream_events"].samples}
    assert events == {"0": 5.0, "1": 0.0}
    late = {(s.labels["partition"], s.labels["kind"]): s.value
            for s in families["txstream_late_events"].samples}
    assert late[("0", "tumbling")] == 1.0
    results = {s.labels["kind"]: s.value for s in families["txstream_window_results"].samples}
    assert results == {"tumbling": 1.0, "hopping": 2.0}
    remaining = {s.labels["role"]: s.value
                 for s in families["txstream_recovery_remaining_records"].samples}
    assert remaining == {"active": 0.0, "standby": 3.0}
    for family in families.values():
        assert family.documentation, family.name


def test_render__escapes_label_values_and_help_and_formats_special_values() -> None:
    family = MetricFamily("x_total", "counter", 'a \\ back\nslash "quote"')
    family.add(1, label='say "hi"\\\n')
    family.add(None, label="unknown")
    gauge = MetricFamily("y", "gauge", "special")
    gauge.add(float("nan"), k="nan")
    gauge.add(float("inf"), k="inf")
    gauge.add(True, k="bool")
    text = render([family, gauge])
    assert text == (
        '# HELP x_total a \\\\ back\\nslash "quote"\n'
        "# TYPE x_total counter\n"
        'x_total{label="say \\"hi\\"\\\\\\n"} 1\n'
        "# HELP y special\n"
        "# TYPE y gauge\n"
        'y{k="nan"} NaN\n'
        'y{k="inf"} +Inf\n'
        'y{k="bool"} 1\n'
    )
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["x"].samples[0].labels == {"label": 'say "hi"\\\n'}


def test_output_counters__count_per_partition_and_kind() -> None:
    counters = OutputCounters()
    counters.add(2, Outputs(results=[WindowResult("tumbling", 1, 0, 1, 1, 1, 1, 1)] * 3))
    counters.add(2, Outputs(results=[WindowResult("sliding", 1, 0, 1, 1, 1, 1, 1)]))
    assert counters.snapshot() == {
        "alerts": {}, "sessions": {}, "late": {},
        "window_results": [{"partition": 2, "kind": "sliding", "count": 1},
                           {"partition": 2, "kind": "tumbling", "count": 3}],
    }


def test_content_type_is_the_text_format_version() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
