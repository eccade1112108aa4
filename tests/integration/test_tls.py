"""Kafka over real TLS: the whole pipeline through a mutual-TLS listener, and clear failures.

The embedded broker sits behind a TLS-terminating proxy and advertises the proxy's
address (``tls_broker`` in conftest.py), so every connection any client makes is TLS
with a client certificate; a plaintext connection to the proxy, an untrusted server
certificate or a missing client certificate is refused there, as by a Kafka broker with
``ssl.client.auth=required``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from app.kafka.tls_certs import make_tls_files
from app.kafka.topic_io import read_until, send_raw
from app.records.times import parse_time
from app.testing import free_port, wait_until

from .conftest import TlsBroker, WorkerFactory
from .test_pipeline import INVALID, VALID, windows_match, write_input

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: A failure must be reported within this many seconds (the connect timeout is 30 s).
QUICK = 15.0



def _run(env: dict[str, str], *args: str,
         timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


async def test_pipeline_over_mutual_tls_and_a_restart_recovers(
        tls_workers: WorkerFactory, tls_broker: TlsBroker, tmp_path: Path) -> None:
    connections_before = tls_broker.proxy.proxy.connections
    worker = tls_workers.start("w1", allowed_lateness="0s")

    # In through the CLI (produce) and the test's own producer, both over mutual TLS.
    done = _run(worker.env, "produce", "--file", str(write_input(tmp_path / "tx.jsonl")))
    assert done.returncode == 0, done.stderr
    assert f"sent {len(VALID)} records" in done.stdout
    await send_raw(tls_workers.kafka, tls_workers.topics.transactions,
                   [(key, value) for key, value, _ in INVALID])

    wait_until(lambda: windows_match(worker), 60, message="exact tumbling windows over TLS")
    dlq = await read_until(tls_workers.kafka, tls_workers.topics.dead_letters,
                           lambda rs: len(rs) >= len(INVALID), timeout=60)
    assert len(dlq) == len(INVALID)
    alerts = await read_until(tls_workers.kafka, tls_workers.topics.alerts,
                              lambda rs: len(rs) >= 2, timeout=60)
    assert sorted(orjson.loads(r.value or b"{}")["alert_id"] for r in alerts) == [
        f"1:{parse_time('2026-03-12T14:00:00Z')}", f"4:{parse_time('2026-03-12T14:20:00Z')}"]
    # The worker's own alerts view reads the topic over TLS too.
    wait_until(lambda: len(worker.get("/alerts/?limit=10")[1]["alerts"]) == 2, 30,
               message="/alerts/ over TLS")
    stats = worker.get("/stats/")[1]
    assert (stats["events_in"], stats["dead_letters"]) == (len(VALID), len(INVALID))

    # The batch report reads the changelog and the input over TLS.
    check = _run(worker.env, "report", "--check")
    assert check.returncode == 0, check.stderr
    assert "no differences" in check.stderr

    # A restart with the local state deleted rebuilds every table from the changelogs,
    # read over TLS.
    worker.process.kill()
    shutil.rmtree(worker.datadir)
    again = tls_workers.start("w1-again", datadir=worker.datadir, allowed_lateness="0s")
    wait_until(lambda: windows_match(again), 90, message="the same windows after the rebuild")
    assert again.get("/stats/")[1]["events_in"] == len(VALID)

    # Every one of those connections went through the proxy's TLS (the broker advertises
    # nothing else), and nothing failed on the way.
    assert tls_broker.proxy.proxy.connections > connections_before
    for process in (worker.process, again.process):
        assert "Traceback" not in process.log_text()


def _failed_start(tls_broker: TlsBroker, tmp_path: Path, command: list[str],
                  **overrides: str) -> tuple[int, str, float]:
    env = {**tls_broker.settings(**overrides), "TXSTREAM_WEB_PORT": str(free_port()),
           "TXSTREAM_DATADIR": str(tmp_path / "data"), "TXSTREAM_APP_ID": "tls-failure",
           "TXSTREAM_EMBEDDED_BROKER": "true"}
    started = time.monotonic()
    done = _run(env, *command, timeout=60)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates from a CA the broker does not know."""
    return tmp_path_factory.mktemp("other-ca")


@pytest.mark.parametrize(("case", "expected"), [
    ("untrusted CA", r"the TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(self-signed "
                     r"certificate in certificate chain\): set TXSTREAM_KAFKA_CA_FILE"),
    ("plaintext client", r"127\.0\.0\.1:\d+ closed the connection before answering "
                         r"\(TXSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT\): if its listener uses "
                         r"TLS, set TXSTREAM_KAFKA_SECURITY_PROTOCOL=SSL"),
    ("no client certificate", r"127\.0\.0\.1:\d+ requires a client certificate: set "
                              r"TXSTREAM_KAFKA_CERT_FILE and TXSTREAM_KAFKA_KEY_FILE"),
    ("unknown client certificate", r"127\.0\.0\.1:\d+ did not accept the client certificate "
                                   r"\(TLSV1_ALERT_UNKNOWN_CA\)"),
], ids=["untrusted-ca", "plaintext-client", "no-client-cert", "unknown-client-cert"])
@pytest.mark.parametrize("command", [["worker", "-l", "info"], ["produce", "--count", "1"]],
                         ids=["worker", "produce"])
def test_tls_mistakes_end_at_once_with_the_reason(tls_broker: TlsBroker, tmp_path: Path,
                                                  other_ca: Path, case: str, expected: str,
                                                  command: list[str]) -> None:
    other = make_tls_files(other_ca / case.replace(" ", "-"), ca_name="another CA")
    overrides = {
        "untrusted CA": {"kafka_ca_file": str(other.ca)},
        "plaintext client": {"kafka_security_protocol": "PLAINTEXT", "kafka_ca_file": "",
                             "kafka_cert_file": "", "kafka_key_file": ""},
        "no client certificate": {"kafka_cert_file": "", "kafka_key_file": ""},
        "unknown client certificate": {"kafka_cert_file": str(other.client.cert),
                                       "kafka_key_file": str(other.client.key)},
    }[case]
    code, output, seconds = _failed_start(tls_broker, tmp_path, command, **overrides)
    name = command[0]
    assert code == 1, output[-3000:]
    assert seconds < QUICK, f"took {seconds:.1f} s"
    lines = [line for line in output.splitlines() if line.startswith(f"txstream {name}: ")]
    assert len(lines) == 1, output[-3000:]
    assert re.fullmatch(rf"txstream {name}: cannot connect to Kafka: {expected}.*", lines[0]), \
        lines[0]
    assert "Traceback" not in output


def test_unreachable_broker_is_retried_for_the_connect_timeout(tls_broker: TlsBroker,
                                                               tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, output, seconds = _failed_start(
        tls_broker, tmp_path, ["worker", "-l", "info"], broker=f"kafka://127.0.0.1:{port}",
        kafka_connect_timeout="3s")
    assert code == 1, output[-3000:]
    assert 3 <= seconds < QUICK
    assert (f"txstream worker: cannot reach Kafka at 127.0.0.1:{port} within 3 s "
            f"(TXSTREAM_KAFKA_CONNECT_TIMEOUT): 127.0.0.1:{port} refused the connection "
            f"(is the broker running?)") in output
    assert "Traceback" not in output


def test_the_broker_behind_the_proxy_speaks_only_through_it(tls_broker: TlsBroker,
                                                            tmp_path: Path) -> None:
    # A client that reaches the broker's own plaintext port is told to use the TLS
    # address: it cannot bypass TLS.
    code, output, _ = _failed_start(
        tls_broker, tmp_path, ["produce", "--count", "1"],
        broker=f"kafka://127.0.0.1:{tls_broker.broker.port}", kafka_security_protocol="PLAINTEXT",
        kafka_ca_file="", kafka_cert_file="", kafka_key_file="", kafka_connect_timeout="2s")
    assert code == 1, output[-3000:]
    assert (f"answers, but the brokers advertise 127.0.0.1:{tls_broker.proxy.port}, which this "
            f"client cannot reach") in output
    assert "Traceback" not in output
