"""The views of two workers over HTTPS with a web token: 401 without it, exact data with it.

Routed requests (a customer owned by the other worker) and the fan-out of /stats/ and
/dashboard/data/ go from worker to worker over HTTPS, carrying the token; probes answer
without it; no response and no log line shows the token.
"""

from __future__ import annotations

import ssl
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3
from aiokafka.partitioner import DefaultPartitioner

from app.kafka.tls_certs import make_tls_files
from app.kafka.topic_io import send_raw
from app.records.times import parse_time
from app.testing import wait_until

from .conftest import PARTITIONS, Worker, WorkerFactory
from .test_pipeline import VALID, expected_tumbling

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "it-0123456789abcdef-web-token"
METRICS_TOKEN = "it-0123456789abcdef-metrics"


def _line(tx_id: str, customer: int, amount: str, event_time: str) -> tuple[bytes, bytes]:
    return (str(customer).encode(),
            (f'{{"tx_id":"{tx_id}","customer_id":{customer},"amount":{amount},'
             f'"currency":"PLN","event_time":"{event_time}"}}').encode())


def _owned(worker: Worker) -> set[int]:
    status, body = worker.get("/stats/?local=1")
    assert status == 200, body
    return {row["partition"] for row in body["partitions"]}


def _both_own_partitions(w1: Worker, w2: Worker) -> bool:
    status, data = w1.get("/stats/")
    return (status == 200 and not data["missing_partitions"] and len(data["workers"]) == 2
            and all(worker["ok"] for worker in data["workers"]))


def _windows(worker: Worker, customer: int,
             **kwargs: Any) -> list[tuple[int, int, Decimal]] | None:
    status, body = worker.get(f"/customers/{customer}/windows/tumbling/", **kwargs)
    if status != 200:
        return None
    return [(parse_time(w["start"]), w["count"], Decimal(str(w["total"])))
            for w in body["windows"]]


async def test_two_https_workers_with_a_token(workers: WorkerFactory, tmp_path: Path) -> None:
    files = make_tls_files(tmp_path / "web-tls")
    web = {"web_token": TOKEN, "metrics_token": METRICS_TOKEN,
           "web_cert_file": str(files.server.cert), "web_key_file": str(files.server.key),
           "web_ca_file": str(files.ca), "allowed_lateness": "0s"}
    w1 = workers.start("w1", **web)
    w2 = workers.start("w2", **web)
    wait_until(lambda: _both_own_partitions(w1, w2), 90, message="both workers own partitions")
    await send_raw(workers.kafka, workers.topics.transactions, [_line(*tx) for tx in VALID])

    expected = expected_tumbling()
    wait_until(lambda: all(_windows(w1, c) == windows for c, windows in expected.items()), 60,
               message="exact windows through w1 (some routed to w2 over HTTPS)")
    # Some of those customers live on the other worker: their answers were routed, with
    # the token, over HTTPS (the key's partition decides, as for the producer).
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    homes = {partitioner(str(c).encode(), partitions, partitions) for c in expected}
    assert homes & _owned(w1) and homes & _owned(w2), "customers on both workers"
    for customer, windows in expected.items():
        assert _windows(w2, customer) == windows  # and the same from the other side

    # Without the token (or with another), every data view is 401 on both workers.
    for worker in (w1, w2):
        for path in ("/customers/1/windows/tumbling/", "/customers/1/sessions/", "/alerts/",
                     "/stats/", "/dashboard/data/", "/openapi.json", "/router/"):
            for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
                status, body = worker.get(path, headers=headers, auth=False)
                assert status == 401, (worker.name, path, body)
                assert body["status"] == 401
        # Probes answer anyone; /metrics wants its own token.
        assert worker.get("/healthz", auth=False)[0] == 200
        wait_until(lambda w=worker: w.get("/readyz", auth=False)[0] == 200, 30,
                   message=f"{worker.name} ready")
        assert worker.get("/metrics", auth=False)[0] == 401
        assert worker.get("/metrics")[0] == 401  # the web token is not the metrics token
        metrics = worker.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                             auth=False)
        assert metrics[0] == 200 and "txstream_events_total" in metrics[1]

    # The stats and the dashboard data gather every worker's part, asked with the token.
    stats = w2.get("/stats/")[1]
    assert stats["events_in"] == len(VALID)
    assert [worker["ok"] for worker in stats["workers"]] == [True, True]
    assert w1.get("/dashboard/data/")[1]["events_in"] == len(VALID)

    # A login session works across workers too (Faust forwards the Cookie header).
    login = w1.request("POST", "/login", fields={"token": TOKEN, "next": "/stats/"},
                       encode_multipart=False, auth=False, redirect=False)
    assert login.status == 303
    cookie = login.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = {"Cookie": cookie.split(";", 1)[0]}
    for customer, windows in expected.items():
        assert _windows(w2, customer, headers=session, auth=False) == windows

    # HTTPS for real: the server presents the test CA's certificate; plain HTTP gets nothing.
    response = w1.request("GET", "/healthz", auth=False)
    assert response.status == 200
    plain = urllib3.PoolManager(retries=False, timeout=5)
    with pytest.raises(urllib3.exceptions.HTTPError):
        plain.request("GET", f"http://127.0.0.1:{w1.port}/healthz")
    untrusting = urllib3.PoolManager(retries=False, timeout=5,
                                     ssl_context=ssl.create_default_context())
    with pytest.raises(urllib3.exceptions.SSLError):
        untrusting.request("GET", f"https://127.0.0.1:{w1.port}/healthz")

    # No secret anywhere: not in any answer above, not in the logs.
    for worker in (w1, w2):
        for path in ("/stats/", "/stats/?local=1", "/dashboard/data/", "/openapi.json",
                     "/readyz", "/healthz", "/alerts/"):
            raw = worker.request("GET", path).data.decode()
            assert TOKEN not in raw and METRICS_TOKEN not in raw, path
        log = worker.process.log_text()
        assert TOKEN not in log and METRICS_TOKEN not in log
        assert "Traceback" not in log


async def test_readyz_names_what_is_missing(workers: WorkerFactory) -> None:
    # One source partition, two workers: the one without a partition is alive, not ready.
    workers.settings["TXSTREAM_PARTITIONS"] = "1"
    w1 = workers.start("w1", web_token=TOKEN)
    w2 = workers.start("w2", web_token=TOKEN)

    def settled() -> tuple[Worker, Worker] | None:
        states = [(w, w.get("/readyz", auth=False)[0]) for w in (w1, w2)]
        ready = [w for w, status in states if status == 200]
        idle = [w for w, status in states if status == 503]
        return (ready[0], idle[0]) if len(ready) == 1 and len(idle) == 1 else None

    ready, idle = wait_until(settled, 90, message="one ready worker, one without a partition")
    status, body = idle.get("/readyz", auth=False)
    assert status == 503
    assert body["ready"] is False
    assert body["reasons"] == [f"assigned: no partition of {workers.topics.transactions} "
                               "assigned to this worker (joining the group, or more workers "
                               "than partitions)"]
    assert [check["ok"] for check in body["checks"]] == [False, True, True, True]
    assert idle.get("/healthz", auth=False)[0] == 200
    status, body = ready.get("/readyz", auth=False)
    assert (status, body["reasons"]) == (200, [])
    assert [check["name"] for check in body["checks"]] == [
        "assigned", "recovered", "consuming", "broker"]
