"""Dashboard data: window sums and top customers per partition, merged exactly over workers."""

from __future__ import annotations

from typing import Any

from app.records.times import parse_time
from app.records.transaction import Transaction
from app.web.dashboard import merge_parts, tumbling_summary
from tables.partition import PartitionState
from tables.windows import WindowConfig

MIN = 60_000
CONFIG = WindowConfig(
    tumbling_ms=5 * MIN, hopping_size_ms=10 * MIN, hopping_step_ms=2 * MIN, sliding_ms=10 * MIN,
    session_gap_ms=15 * MIN, allowed_lateness_ms=0, idle_timeout_ms=30_000,
    retention_ms=60 * MIN, alert_threshold_cents=500_000,
)
T14 = parse_time("2026-03-12T14:00:00Z")
T1405 = parse_time("2026-03-12T14:05:00Z")


def _tx(tx_id: str, customer: int, cents: int, at: str) -> Transaction:
    return Transaction(tx_id, customer, cents, "PLN", parse_time(f"2026-03-12T{at}Z"))


def _state(partition: int, txs: list[Transaction]) -> PartitionState:
    state = PartitionState(partition, CONFIG, kinds=("tumbling",))
    state.apply(list(enumerate(txs)))
    return state


def test_tumbling_summary__exact_sums_per_window_and_top_of_the_latest() -> None:
    state = _state(0, [
        _tx("a", 1, 10_010, "14:00:00"), _tx("b", 1, 490_000, "14:01:00"),
        _tx("c", 2, 1, "14:04:59.999"), _tx("d", 2, 25_000, "14:05:00"),
        _tx("e", 3, 30_000, "14:06:00"), _tx("f", 4, 25_000, "14:07:00"),
    ])
    summary = tumbling_summary(state.tumbling, top=2)
    assert summary == {
        "windows": [
            {"start_ms": T14, "count": 3, "total_cents": 500_011, "customers": 2, "closed": True},
            {"start_ms": T1405, "count": 3, "total_cents": 80_000, "customers": 3,
             "closed": False},
        ],
        # 30000 first; 2 and 4 tie at 25000: the lower customer id wins the last place.
        "top": {"start_ms": T1405, "customers": [
            {"customer_id": 3, "count": 1, "total_cents": 30_000},
            {"customer_id": 2, "count": 1, "total_cents": 25_000},
        ]},
    }


def test_tumbling_summary__empty_partition() -> None:
    assert tumbling_summary(_state(0, []).tumbling) == {
        "windows": [], "top": {"start_ms": None, "customers": []}}


def _part(worker: str, rows: list[dict[str, Any]], rate: float = 1.0) -> dict[str, Any]:
    return {"worker": worker, "events_per_second": rate, "alerts_sent": 1,
            "window_results_sent": 2, "partitions": rows}


def _row(partition: int, state: PartitionState, events: int | None = None) -> dict[str, Any]:
    return {"partition": partition, "events": state.counter("events") if events is None else events,
            "dead_letters": 0, "late": {"tumbling": 0},
            "event_time_lag_seconds": 5.0 + partition, "customers": {"tumbling": 0},
            "worker": f"w{partition}", **tumbling_summary(state.tumbling)}


def test_merge_parts__sums_cents_over_workers_and_merges_top_lists() -> None:
    # 0.10 + 0.20 over floats would be 0.30000000000000004: sums go through cents.
    p0 = _state(0, [_tx("a", 1, 10, "14:00:00"), _tx("b", 5, 123_456_789, "14:06:00")])
    p1 = _state(1, [_tx("c", 2, 20, "14:01:00"), _tx("d", 6, 99, "14:07:00")])
    p2 = _state(2, [_tx("e", 3, 1, "14:02:00")])
    data = merge_parts(
        [_part("http://a", [_row(0, p0)], 2.5), _part("http://b", [_row(1, p1), _row(2, p2)])],
        partitions_expected=4, window_size_ms=5 * MIN, kinds=["tumbling"],
        alerts=[{"alert_id": "5:1", "total": 5000.1}])
    assert data["windows"] == [
        {"start": "2026-03-12T14:00:00Z", "end": "2026-03-12T14:05:00Z", "start_ms": T14,
         "end_ms": T1405, "count": 3, "total": 0.31, "total_cents": 31, "customers": 3,
         "closed": False},  # still open in partition 2 (its watermark is 14:02)
        {"start": "2026-03-12T14:05:00Z", "end": "2026-03-12T14:10:00Z", "start_ms": T1405,
         "end_ms": T1405 + 5 * MIN, "count": 2, "total": 1234568.88, "total_cents": 123_456_888,
         "customers": 2, "closed": False},
    ]
    current = data["current_window"]
    assert (current["start"], current["total_cents"]) == ("2026-03-12T14:05:00Z", 123_456_888)
    # Partition 2 has no 14:05 window: its top (of 14:00) is not mixed in.
    assert current["top"] == [
        {"customer_id": 5, "count": 1, "total": 1234567.89, "total_cents": 123_456_789},
        {"customer_id": 6, "count": 1, "total": 0.99, "total_cents": 99},
    ]
    assert data["missing_partitions"] == [3]
    assert (data["events_in"], data["events_per_second"], data["alerts_sent"]) == (5, 3.5, 2)
    assert data["event_time_lag_seconds"] == 7.0
    assert [p["partition"] for p in data["partitions"]] == [0, 1, 2]
    assert "windows" not in data["partitions"][0]
    assert data["alerts"] == [{"alert_id": "5:1", "total": 5000.1, "total_cents": 500_010}]
    assert [w["url"] for w in data["workers"]] == ["http://a", "http://b"]


def test_merge_parts__a_partition_reported_twice_is_taken_once_from_the_most_advanced() -> None:
    old = _state(0, [_tx("a", 1, 100, "14:00:00")])
    new = _state(0, [_tx("a", 1, 100, "14:00:00"), _tx("b", 1, 200, "14:01:00")])
    data = merge_parts([_part("http://old", [_row(0, old)]), _part("http://new", [_row(0, new)])],
                       partitions_expected=1, window_size_ms=5 * MIN, kinds=["tumbling"])
    assert [(w["count"], w["total_cents"]) for w in data["windows"]] == [(2, 300)]
    assert data["events_in"] == 2
    assert data["missing_partitions"] == []


def test_merge_parts__nothing_yet() -> None:
    data = merge_parts([_part("http://a", [])], partitions_expected=2, window_size_ms=5 * MIN,
                       kinds=["tumbling"])
    assert (data["windows"], data["current_window"], data["missing_partitions"]) == ([], None,
                                                                                     [0, 1])
    assert data["event_time_lag_seconds"] is None


def test_merge_parts__sums_duplicates_and_conflicts_over_partitions() -> None:
    p0, p1 = _state(0, []), _state(1, [])
    rows = [{**_row(0, p0), "duplicates": 2, "duplicate_conflicts": 1},
            {**_row(1, p1), "duplicates": 3, "duplicate_conflicts": 0}]
    data = merge_parts([_part("http://a", rows)], partitions_expected=2,
                       window_size_ms=5 * MIN, kinds=["tumbling"])
    assert (data["duplicates"], data["duplicate_conflicts"]) == (5, 1)
