"""The pipeline end to end: a known file in, exact windows over HTTP, DLQ and alerts out."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from app.kafka.topic_io import read_until, send_raw
from app.process import ManagedProcess
from app.records.times import parse_time
from app.testing import wait_until

from .conftest import Worker, WorkerFactory

pytestmark = pytest.mark.integration

FIVE_MIN = 5 * 60_000

VALID = [
    # customer 1: 100.10 + 4900.00 crosses 5000 in the 14:00 window (alert), then more
    ("a1", 1, "100.10", "2026-03-12T14:00:00Z"),
    ("a2", 1, "4900.00", "2026-03-12T14:01:00Z"),
    ("a3", 1, "0.01", "2026-03-12T14:04:59.999Z"),
    ("a4", 1, "250.00", "2026-03-12T14:05:00Z"),   # boundary: next window
    # customer 2: exactly 5000.00 never passes the threshold (strictly greater alerts)
    ("b1", 2, "2500.00", "2026-03-12T14:02:00Z"),
    ("b2", 2, "2500.00", "2026-03-12T14:03:00Z"),
    # customer 3: out of order within one window
    ("c1", 3, "19.99", "2026-03-12T14:14:00Z"),
    ("c2", 3, "5.01", "2026-03-12T14:10:00Z"),
    ("c3", 3, "1234.56", "2026-03-12T14:12:30Z"),
    ("d1", 4, "5000.01", "2026-03-12T14:20:00Z"),  # one purchase over the threshold
]
INVALID = [
    (b"2", b'{"tx_id":"x1","customer_id":2,"amount":-5,"currency":"PLN",'
           b'"event_time":"2026-03-12T14:02:00Z"}', "amount must be positive"),
    (None, b"not json at all", "not JSON"),
    (b"3", b'{"tx_id":"x2","customer_id":3,"amount":10,"currency":"EUR",'
           b'"event_time":"2026-03-12T14:02:00Z"}', "unknown currency"),
    (b"1", b'{"tx_id":"x3","customer_id":1,"amount":10,"currency":"PLN"}',
     "missing field: event_time"),
    (b"9", b'{"tx_id":"x4","customer_id":1,"amount":10,"currency":"PLN",'
           b'"event_time":"2026-03-12T14:02:00Z"}', "does not match customer_id"),
]


def _line(tx_id: str, customer: int, amount: str, event_time: str) -> bytes:
    return (f'{{"tx_id":"{tx_id}","customer_id":{customer},"amount":{amount},'
            f'"currency":"PLN","event_time":"{event_time}"}}').encode()


def expected_tumbling() -> dict[int, list[tuple[int, int, Decimal]]]:
    """Ground truth computed naively from the input: (window start, count, total)."""
    sums: dict[tuple[int, int], list[Decimal]] = defaultdict(list)
    for _, customer, amount, event_time in VALID:
        t = parse_time(event_time)
        sums[(customer, t - t % FIVE_MIN)].append(Decimal(amount))
    out: dict[int, list[tuple[int, int, Decimal]]] = defaultdict(list)
    for (customer, start), amounts in sorted(sums.items()):
        out[customer].append((start, len(amounts), sum(amounts, Decimal(0))))
    return out


def served_tumbling(worker: Worker, customer: int) -> list[tuple[int, int, Decimal]] | None:
    """A customer's tumbling windows as served: (start, count, total); None if not 200."""
    status, body = worker.get(f"/customers/{customer}/windows/tumbling/")
    if status != 200:
        return None
    return [(parse_time(w["start"]), w["count"], Decimal(str(w["total"])))
            for w in body["windows"]]


def windows_match(worker: Worker) -> bool:
    """Whether every customer's served tumbling windows equal :func:`expected_tumbling`."""
    return all(served_tumbling(worker, customer) == windows
               for customer, windows in expected_tumbling().items())


def write_input(path: Path) -> Path:
    path.write_bytes(b"\n".join(_line(*tx) for tx in VALID) + b"\n")
    return path


async def test_known_file_gives_exact_windows_dlq_and_alerts(
        workers: WorkerFactory, tmp_path: Path) -> None:
    worker = workers.start(allowed_lateness="0s")
    # The keys of invalid records matter (a key that disagrees with the body is itself an
    # error), so send the valid ones through the CLI's --file and the invalid ones raw.
    source = write_input(tmp_path / "transactions.jsonl")
    done = subprocess.run([sys.executable, "-m", "app", "produce", "--file", str(source)],
                          env={**worker.env}, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"sent {len(VALID)} records" in done.stdout
    await send_raw(workers.kafka, workers.topics.transactions,
                   [(key, value) for key, value, _ in INVALID])

    wait_until(lambda: windows_match(worker), 60, message="every customer's tumbling windows")

    _, body = worker.get("/customers/1/windows/tumbling/")
    first = body["windows"][0]
    assert first["start"] == "2026-03-12T14:00:00Z"
    assert first["end"] == "2026-03-12T14:05:00Z"
    assert (first["count"], first["total"], first["min"], first["max"], first["average"]) == (
        3, 5000.11, 0.01, 4900.0, 1666.70)

    # Every invalid record is on the DLQ, with its original bytes and a reason.
    dlq = await read_until(workers.kafka, workers.topics.dead_letters,
                           lambda rs: len(rs) >= len(INVALID), timeout=60)
    assert len(dlq) == len(INVALID)
    by_value = {r.value: dict(r.headers) for r in dlq}
    for _, value, reason in INVALID:
        assert value in by_value, value
        assert reason in by_value[value]["txstream-reason"].decode()
        assert by_value[value]["txstream-source"].startswith(
            workers.topics.transactions.encode())

    # Exactly one alert per crossing window (customers 1 and 4), none for customer 2.
    alerts = await read_until(workers.kafka, workers.topics.alerts,
                              lambda rs: len(rs) >= 2, timeout=60)
    decoded = sorted((orjson.loads(r.value or b"{}") for r in alerts),
                     key=lambda a: a["customer_id"])
    assert [(a["alert_id"], a["customer_id"], a["total"], a["tx_id"]) for a in decoded] == [
        (f"1:{parse_time('2026-03-12T14:00:00Z')}", 1, 5000.10, "a2"),
        (f"4:{parse_time('2026-03-12T14:20:00Z')}", 4, 5000.01, "d1"),
    ]
    wait_until(lambda: len(worker.get("/alerts/?limit=10")[1]["alerts"]) == 2, 30,
               message="/alerts/ lists both")
    assert [a["customer_id"] for a in worker.get("/alerts/?limit=10")[1]["alerts"]] == [4, 1]

    stats = worker.get("/stats/")[1]
    assert stats["events_in"] == len(VALID)
    assert stats["dead_letters"] == len(INVALID)


async def test_bad_requests_are_400_and_unknown_customers_404(workers: WorkerFactory) -> None:
    worker = workers.start()
    for path, status in [
        ("/customers/abc/windows/tumbling/", 400),
        ("/customers/-1/windows/tumbling/", 400),
        ("/customers/007/windows/tumbling/", 400),
        ("/customers/1/windows/weekly/", 400),
        ("/alerts/?limit=0", 400),
        ("/alerts/?limit=abc", 400),
        ("/alerts/?limit=5000", 400),
        ("/customers/424242/windows/tumbling/", 404),
        ("/customers/424242/sessions/", 404),
    ]:
        got, body = worker.get(path)
        assert got == status, (path, body)
        assert isinstance(body, dict)
        assert body["status"] == status
        assert "error" in body


async def test_alerts_command_prints_each_alert_as_it_arrives(
        workers: WorkerFactory, tmp_path: Path) -> None:
    worker = workers.start()
    printer = ManagedProcess([sys.executable, "-m", "app", "alerts"], env=worker.env,
                             log_path=tmp_path / "alerts.log", name="alerts")
    with printer:
        # It reads from the end of the topic: send once it says it is listening.
        printer.wait_for_log(r"listening for alerts", timeout=30)
        await send_raw(workers.kafka, workers.topics.transactions,
                       [(b"5", _line("big", 5, "6000.00", "2026-03-12T15:00:00Z"))])
        line = printer.wait_for_log(r"\{.*\"alert_id\".*\}", timeout=60).group(0)
    alert = orjson.loads(line)
    assert (alert["customer_id"], alert["total"], alert["tx_id"]) == (5, 6000.0, "big")

