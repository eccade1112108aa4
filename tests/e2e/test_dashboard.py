"""The dashboard in a real browser over two workers: the numbers shown are the tables' numbers.

Needs Debian's ``chromium`` (CI installs it in ``.ci/run``); the test fails, with the command
to install it, when it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal
from functools import partial
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.kafka.topic_io import send_raw
from app.records.times import format_time, parse_time
from app.testing import wait_until

from .conftest import Worker, WorkerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core"

MIN = 60_000
WINDOW = 5 * MIN
BASE = parse_time("2026-03-12T14:00:00Z")
WINDOWS = 8
CUSTOMERS = 12

Row = tuple[str, int, int, int]  # tx id, customer, cents, event time ms


def _input() -> tuple[list[Row], Row]:
    """Every customer in every window (sorted by event time), three big purchases, one late."""
    rows: list[Row] = []
    for w in range(WINDOWS):
        for c in range(1, CUSTOMERS + 1):
            for k in range(1 + (c + w) % 3):
                cents = 1000 + (c * 7919 + w * 104729 + k * 1299709) % 150000
                t = BASE + w * WINDOW + ((c * 13 + k * 71) % 300) * 1000
                rows.append((f"t{w}-{c}-{k}", c, cents, t))
    rows += [  # each crosses 5000.00 PLN in its window: three alerts
        ("big-3", 3, 520_000, BASE + 2 * WINDOW + 150_000),
        ("big-7", 7, 499_999, BASE + 5 * WINDOW + 299_000),
        ("big-11", 11, 600_000, BASE + 7 * WINDOW + 200_000),
    ]
    rows.sort(key=lambda r: (r[3], r[0]))
    # After customer 1's partition has passed 14:35, an event of 14:01 is late.
    late = ("late-1", 1, 12_345, BASE + MIN)
    return rows, late


def _json_line(row: Row) -> bytes:
    tx_id, customer, cents, t = row
    return (f'{{"tx_id":"{tx_id}","customer_id":{customer},"amount":{cents // 100}.'
            f'{cents % 100:02d},"currency":"PLN","event_time":"{format_time(t)}"}}').encode()


INVALID = [
    (b"5", b"{not json"),
    (b"5", b'{"tx_id":"x1","customer_id":5,"amount":-1,"currency":"PLN",'
           b'"event_time":"2026-03-12T14:02:00Z"}'),
    (b"6", b'{"tx_id":"x2","customer_id":6,"amount":10,"currency":"XYZ",'
           b'"event_time":"2026-03-12T14:02:00Z"}'),
]


def _expected_windows(rows: list[Row]) -> dict[int, tuple[int, int, int]]:
    """Window start -> (count, total cents, customers), computed naively from the input."""
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    who: dict[int, set[int]] = defaultdict(set)
    for _, customer, cents, t in rows:
        start = t - t % WINDOW
        sums[start][0] += 1
        sums[start][1] += cents
        who[start].add(customer)
    return {start: (n, total, len(who[start])) for start, (n, total) in sorted(sums.items())}


def _money(cents: int) -> str:
    """As the page prints it: thousands separated by commas, two decimals."""
    return f"{cents // 100:,}.{cents % 100:02d}"


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = f"chromium is not installed; as root: {INSTALL}"
        pytest.fail(message)
    return path


def _browser(url: str, profile: Path, *extra: str) -> str:
    """Load ``url`` headless, let its script run (virtual time), return stdout."""
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--virtual-time-budget=12000", *extra, url],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _text(fragment: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _metrics(worker: Worker) -> dict[str, list[Any]]:
    status, body = worker.get("/metrics")
    assert status == 200
    assert isinstance(body, str)
    by_name: dict[str, list[Any]] = defaultdict(list)  # by sample name: "x_total", not "x"
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            by_name[sample.name].append(sample)
    return by_name


def _sum(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return float(sum(s.value for s in samples.get(name, [])
                     if all(s.labels.get(k) == v for k, v in labels.items())))


def _both_workers_own_partitions(w: Worker) -> bool:
    status, data = w.get("/dashboard/data/")
    return (status == 200 and not data["missing_partitions"] and len(data["workers"]) == 2
            and all(x["ok"] and x["partitions"] for x in data["workers"]))


async def test_dashboard_shows_the_tables_numbers(workers: WorkerFactory, tmp_path: Path) -> None:
    _chromium()  # fail early, before starting anything
    # No lateness and no idle advance: which windows are closed follows from the input alone.
    w1 = workers.start("w1", allowed_lateness="0s", idle_timeout="1h")
    w2 = workers.start("w2", allowed_lateness="0s", idle_timeout="1h")
    # Send only once the group is stable: no rebalance while applying, so the
    # process-lifetime output counters are exact too.
    for w in (w1, w2):
        wait_until(partial(_both_workers_own_partitions, w), 90,
                   message=f"{w.name}: both workers own partitions")

    rows, late = _input()
    await send_raw(workers.kafka, workers.topics.transactions,
                   [(str(r[1]).encode(), _json_line(r)) for r in rows])
    wait_until(lambda: w1.get("/dashboard/data/")[1]["events_in"] == len(rows), 60,
               message="all valid events applied")
    await send_raw(workers.kafka, workers.topics.transactions,
                   [(str(late[1]).encode(), _json_line(late)), *INVALID])

    def settled() -> dict[str, Any] | None:
        status, data = w2.get("/dashboard/data/")
        done = (status == 200 and data["events_in"] == len(rows) + 1
                and data["dead_letters"] == len(INVALID) and len(data["alerts"]) == 3)
        return data if done else None

    data = wait_until(settled, 60, message="late event, dead letters and alerts")

    # -- the data view against the input and against the tables --
    expected = _expected_windows(rows)
    assert [(w["start_ms"], w["count"], w["total_cents"], w["customers"])
            for w in data["windows"]] == [(s, *v) for s, v in expected.items()]
    assert [w["closed"] for w in data["windows"]] == [True] * (WINDOWS - 1) + [False]
    tables: dict[int, Decimal] = defaultdict(Decimal)
    for customer in range(1, CUSTOMERS + 1):
        status, body = w1.get(f"/customers/{customer}/windows/tumbling/")
        assert status == 200, body
        for window in body["windows"]:
            tables[parse_time(window["start"])] += Decimal(str(window["total"]))
    assert {s: Decimal(w["total_cents"]) / 100 for s, w in
            ((w["start_ms"], w) for w in data["windows"])} == dict(tables)
    assert data["late"]["tumbling"] == 1
    alert_ids = {f"{c}:{BASE + w * WINDOW}" for c, w in ((3, 2), (7, 5), (11, 7))}
    assert {a["alert_id"] for a in data["alerts"]} == alert_ids
    current = data["current_window"]
    assert current["start_ms"] == BASE + 7 * WINDOW
    assert current["top"][0]["customer_id"] == 11
    assert w1.get("/dashboard/data/")[1]["windows"] == data["windows"]  # any worker

    # -- the page in a browser --
    profile = tmp_path / "chromium"
    dom = _browser(w2.base_url + "/dashboard/", profile, "--dump-dom")
    assert re.search(r'<body[^>]*data-state="ok"', dom), dom[:500]
    assert re.search(r'<body[^>]*data-updates="[1-9]', dom)
    shown = {m.group(1): _text(m.group(2)) for m in re.finditer(
        r'<tr[^>]*data-start="([^"]+)"[^>]*>.*?<td class="num total">(.*?)</td>', dom)}
    assert shown == {format_time(s): _money(v[1]) for s, v in expected.items()}
    for alert_id in alert_ids:
        assert f'data-alert-id="{alert_id}"' in dom
    kpi = {m.group(1): _text(m.group(2)) for m in re.finditer(
        r'<div class="value" id="kpi-([a-z]+)">(.*?)</div>', dom)}
    assert kpi["events"] == f"{len(rows) + 1:,}"
    assert (kpi["dlq"], kpi["late"], kpi["alerts"], kpi["duplicates"]) == (str(len(INVALID)), str(
        data["late_total"]), "3", str(data["duplicates"]))
    top = re.search(r'<g class="hbar first" data-customer="(\d+)" data-cents="(\d+)">(.*?)</g>',
                    dom)
    assert top is not None
    assert (int(top.group(1)), int(top.group(2))) == (11, current["top"][0]["total_cents"])
    assert _money(current["top"][0]["total_cents"]) in _text(top.group(3))
    for p in range(4):
        assert f'<tr data-partition="{p}">' in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    _browser(w1.base_url + "/dashboard/", profile, f"--screenshot={shot}",
             "--window-size=1280,1600", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one

    # -- /metrics of both workers: counters match what was sent --
    m1, m2 = _metrics(w1), _metrics(w2)
    assert _sum(m1, "txstream_events_total") + _sum(m2, "txstream_events_total") == len(rows) + 1
    assert (_sum(m1, "txstream_dead_letters_total")
            + _sum(m2, "txstream_dead_letters_total")) == len(INVALID)
    assert (_sum(m1, "txstream_late_events_total", kind="tumbling")
            + _sum(m2, "txstream_late_events_total", kind="tumbling")) == 1
    assert _sum(m1, "txstream_late_records_total") + _sum(m2, "txstream_late_records_total") == 1
    assert _sum(m1, "txstream_alerts_total") + _sum(m2, "txstream_alerts_total") == 3
    closed = CUSTOMERS * (WINDOWS - 1)  # every customer, every window but the last
    assert (_sum(m1, "txstream_window_results_total", kind="tumbling")
            + _sum(m2, "txstream_window_results_total", kind="tumbling")) == closed
    assert (_sum(m1, "txstream_records_received_total")
            + _sum(m2, "txstream_records_received_total")) == len(rows) + 1 + len(INVALID)
    owned = {s.labels["partition"] for m in (m1, m2) for s in m["txstream_watermark_seconds"]}
    assert owned == {"0", "1", "2", "3"}
    per_partition = {p["partition"]: p["events"] for p in data["partitions"]}
    for m in (m1, m2):
        for sample in m["txstream_events_total"]:
            assert per_partition[int(sample.labels["partition"])] == sample.value
    assert _sum(m1, "txstream_recovery_completed") == 1
