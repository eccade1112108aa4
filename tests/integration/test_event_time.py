"""Event-time windows through a real worker: exact finals, sessions, late events, idle close."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.kafka.topic_io import TopicRecord, read_until, send_raw
from app.records.times import format_time, parse_time
from app.testing import wait_until

from .conftest import WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = parse_time("2026-03-12T14:00:00Z")
S = 1000
CUSTOMER = 7

# (tx_id, seconds after T0, amount) in send order. Sizes: tumbling 10s, hopping 20s/10s,
# sliding 10s, session gap 10s, allowed lateness 1s.
EVENTS = [
    ("e1", 1, "10.00"),
    ("e2", 4, "20.00"),
    ("e3", 12, "30.00"),  # watermark 11s: tumbling [0,10), hopping [-10,10) close
    ("e4", 3, "5.00"),    # late for tumbling, hopping [-10,10), sliding; joins the session
    ("e5", 40, "1.00"),   # watermark 39s; the rest closes only by idling
]


def _t(seconds: int) -> str:
    return format_time(T0 + seconds * S)


def _window(start: int, end: int, count: int, total: float) -> tuple[str, str, int, float]:
    return (_t(start), _t(end), count, total)


EXPECTED_RESULTS = {
    "tumbling": [_window(0, 10, 2, 30.0), _window(10, 20, 1, 30.0), _window(40, 50, 1, 1.0)],
    "hopping": [_window(-10, 10, 2, 30.0), _window(0, 20, 4, 65.0), _window(10, 30, 1, 30.0),
                _window(30, 50, 1, 1.0), _window(40, 60, 1, 1.0)],
    # (t - 10s, t] for every distinct event time t; e4 was late, so not in any.
    "sliding": [_window(-9, 1, 1, 10.0), _window(-6, 4, 2, 30.0), _window(2, 12, 2, 50.0),
                _window(30, 40, 1, 1.0)],
}
EXPECTED_SESSIONS = [(_t(1), _t(12), 4, 65.0), (_t(40), _t(40), 1, 1.0)]


def _tx(tx_id: str, seconds: int, amount: str) -> tuple[bytes, bytes]:
    value = (f'{{"tx_id":"{tx_id}","customer_id":{CUSTOMER},"amount":{amount},'
             f'"currency":"PLN","event_time":{T0 + seconds * S}}}')
    return str(CUSTOMER).encode(), value.encode()


def _decode(records: list[TopicRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value or b"{}") for r in records]


async def test_final_windows_sessions_and_late_events_exactly_once(
        workers: WorkerFactory) -> None:
    worker = workers.start(tumbling="10s", hopping="20s/10s", sliding="10s", session_gap="10s",
                           allowed_lateness="1s", idle_timeout="1s", retention="1h")
    await send_raw(workers.kafka, workers.topics.transactions, [_tx(*e) for e in EVENTS])

    expected_count = sum(len(v) for v in EXPECTED_RESULTS.values())
    results = await read_until(workers.kafka, workers.topics.window_results,
                               lambda rs: len(rs) >= expected_count, timeout=90)
    got: dict[str, list[tuple[str, str, int, float]]] = {}
    for r in sorted(_decode(results), key=lambda r: (r["kind"], r["start"])):
        assert r["customer_id"] == CUSTOMER
        assert r["result_id"] == f"{r['kind']}:{CUSTOMER}:{parse_time(r['start'])}"
        got.setdefault(r["kind"], []).append((r["start"], r["end"], r["count"], r["total"]))
    assert got == EXPECTED_RESULTS
    assert len(results) == expected_count, "each window's final result exactly once"

    sessions = await read_until(workers.kafka, workers.topics.sessions,
                                lambda rs: len(rs) >= 2, timeout=60)
    assert sorted((s["start"], s["end"], s["count"], s["total"]) for s in _decode(sessions)) == (
        EXPECTED_SESSIONS)
    assert {s["duration"] for s in _decode(sessions)} == {11.0, 0.0}

    late = await read_until(workers.kafka, workers.topics.late, lambda rs: len(rs) >= 1,
                            timeout=30)
    (only,) = _decode(late)
    assert (only["tx_id"], only["kinds"], only["amount"]) == (
        "e4", ["tumbling", "hopping", "sliding"], 5.0)
    assert only["watermark"] == _t(11)

    # The views show the same windows, all closed, and the stats count the late event.
    status, body = worker.get(f"/customers/{CUSTOMER}/windows/hopping/")
    assert status == 200
    assert [(w["start"], w["end"], w["count"], w["total"], w["closed"]) for w in body["windows"]] \
        == [(*w, True) for w in EXPECTED_RESULTS["hopping"]]
    status, body = worker.get(f"/customers/{CUSTOMER}/windows/sliding/")
    assert [(w["start"], w["end"], w["count"], w["total"]) for w in body["windows"]] == (
        EXPECTED_RESULTS["sliding"])
    status, body = worker.get(f"/customers/{CUSTOMER}/sessions/")
    assert [(s["start"], s["end"], s["count"], s["total"], s["closed"])
            for s in body["sessions"]] == [(*s, True) for s in EXPECTED_SESSIONS]
    stats = worker.get("/stats/")[1]
    assert stats["late"] == {"tumbling": 1, "hopping": 1, "sliding": 1, "session": 0}
    (partition,) = [p for p in stats["partitions"] if p["events"]]
    assert partition["events"] == len(EVENTS)
    assert partition["max_event_time"] == _t(40)
    # Idling moved the watermark on past the last session's end (40s + 10s gap).
    assert parse_time(partition["watermark"]) >= T0 + 50 * S


async def test_tunnel_burst_after_the_watermark_moved_on_is_late_not_lost(
        workers: WorkerFactory) -> None:
    worker = workers.start(tumbling="1m", allowed_lateness="5s", idle_timeout="1h")
    now = [_tx("n1", 600, "1.00")]  # 14:10:00: the watermark reaches 14:09:55
    burst = [_tx(f"b{i}", 60 + i, "2.00") for i in range(30)]  # stored purchases from 14:01
    await send_raw(workers.kafka, workers.topics.transactions, now + burst)
    late = await read_until(workers.kafka, workers.topics.late, lambda rs: len(rs) >= 30,
                            timeout=60)
    assert sorted(r["tx_id"] for r in _decode(late)) == sorted(f"b{i}" for i in range(30))
    assert all("tumbling" in r["kinds"] for r in _decode(late))

    def windows() -> list[tuple[str, int]] | None:
        status, body = worker.get(f"/customers/{CUSTOMER}/windows/tumbling/")
        return [(w["start"], w["count"]) for w in body["windows"]] if status == 200 else None
    # The closed 14:01 window was never created by the late burst; only 14:10 exists.
    assert wait_until(windows, 30) == [(_t(600), 1)]
    assert worker.get("/stats/")[1]["late"]["tumbling"] == 30
