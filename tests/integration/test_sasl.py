"""Kafka with SASL/SCRAM over TLS: the pipeline end to end after a real login, and clear failures.

The embedded broker cannot authenticate (BROKER.md fact 13), so ``sasl_broker`` puts a
SASL proxy in front of it that answers the SASL part of the Kafka protocol as Apache
Kafka does: a real SCRAM-SHA-512 exchange in which the client proves the password and the
server proves it knows it too, error 58 for a failed login, a closed connection for a
client that skips SASL. The same tests run against a real SASL broker when
TXSTREAM_TEST_BROKER and the TXSTREAM_KAFKA_* settings of a user on it are given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from app.kafka.topic_io import read_until, send_raw
from app.records.times import parse_time
from app.testing import free_port, wait_until

from .conftest import SaslBroker, WorkerFactory
from .test_pipeline import INVALID, windows_match, write_input

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUICK = 15.0



def _run(env: dict[str, str], *args: str,
         timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


async def test_pipeline_after_a_scram_login(sasl_workers: WorkerFactory,
                                            sasl_broker: SaslBroker, tmp_path: Path) -> None:
    password = sasl_broker.env["TXSTREAM_KAFKA_PASSWORD"]
    logins_before = len(sasl_broker.proxy.logins) if sasl_broker.proxy else 0
    worker = sasl_workers.start("w1", allowed_lateness="0s")

    done = _run(worker.env, "produce", "--file", str(write_input(tmp_path / "tx.jsonl")))
    assert done.returncode == 0, done.stderr
    await send_raw(sasl_workers.kafka, sasl_workers.topics.transactions,
                   [(key, value) for key, value, _ in INVALID])
    wait_until(lambda: windows_match(worker), 60, message="exact windows after SASL login")
    alerts = await read_until(sasl_workers.kafka, sasl_workers.topics.alerts,
                              lambda rs: len(rs) >= 2, timeout=60)
    assert sorted(orjson.loads(r.value or b"{}")["alert_id"] for r in alerts) == [
        f"1:{parse_time('2026-03-12T14:00:00Z')}", f"4:{parse_time('2026-03-12T14:20:00Z')}"]
    wait_until(lambda: worker.get("/stats/")[1]["dead_letters"] == len(INVALID), 30,
               message="dead letters counted")
    check = _run(worker.env, "report", "--check")
    assert check.returncode == 0, check.stderr
    assert "no differences" in check.stderr

    if sasl_broker.proxy is not None:
        # Every connection logged in (the worker's consumer, producer, admin, the views'
        # readers, the CLI's clients), as the one user, and none failed.
        logins = sasl_broker.proxy.logins[logins_before:]
        assert len(logins) >= 5
        assert set(logins) == {("alice", True)}
    # The password shows nowhere: not in the worker's log, the CLI's output or the views.
    texts = [worker.process.log_text(), done.stdout, done.stderr, check.stdout, check.stderr]
    texts += [orjson.dumps(worker.get(path)[1]).decode()
              for path in ("/stats/", "/stats/?local=1", "/dashboard/data/", "/readyz")]
    for text in texts:
        assert password not in text
    assert "Traceback" not in worker.process.log_text()


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong password", r"SASL authentication to \S+ as 'alice' \(SCRAM-SHA-512\) failed: "
                       r"wrong password or unknown user \(TXSTREAM_KAFKA_USERNAME, "
                       r"TXSTREAM_KAFKA_PASSWORD\)"),
    ("unknown user", r"SASL authentication to \S+ as 'mallory' \(SCRAM-SHA-512\) failed: "
                     r"wrong password or unknown user"),
    ("no SASL", r"\S+ closed the connection before answering \(TXSTREAM_KAFKA_SECURITY_PROTOCOL"
                r"=SSL\): it may require a client certificate \(TXSTREAM_KAFKA_CERT_FILE and "
                r"TXSTREAM_KAFKA_KEY_FILE\) or SASL"),
], ids=["wrong-password", "unknown-user", "no-sasl"])
@pytest.mark.parametrize("command", [["worker", "-l", "info"], ["produce", "--count", "1"]],
                         ids=["worker", "produce"])
def test_sasl_mistakes_end_at_once_with_the_reason(sasl_broker: SaslBroker, tmp_path: Path,
                                                   case: str, expected: str,
                                                   command: list[str]) -> None:
    if sasl_broker.proxy is None and case == "no SASL":
        pytest.skip("the reason a real broker gives a client without SASL depends on it")
    wrong = "not-" + sasl_broker.env["TXSTREAM_KAFKA_PASSWORD"]
    overrides = {
        "wrong password": {"kafka_password": wrong},
        "unknown user": {"kafka_username": "mallory"},
        "no SASL": {"kafka_security_protocol": "SSL", "kafka_sasl_mechanism": "",
                    "kafka_username": "", "kafka_password": ""},
    }[case]
    env = {**sasl_broker.settings(**overrides), "TXSTREAM_WEB_PORT": str(free_port()),
           "TXSTREAM_DATADIR": str(tmp_path / "data"), "TXSTREAM_APP_ID": "sasl-failure",
           "TXSTREAM_EMBEDDED_BROKER": "true"}
    started = time.monotonic()
    done = _run(env, *command, timeout=60)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    name = command[0]
    assert done.returncode == 1, output[-3000:]
    assert seconds < QUICK, f"took {seconds:.1f} s"
    lines = [line for line in output.splitlines() if line.startswith(f"txstream {name}: ")]
    assert len(lines) == 1, output[-3000:]
    assert re.fullmatch(rf"txstream {name}: cannot connect to Kafka: {expected}.*", lines[0]), \
        lines[0]
    assert "Traceback" not in output
    # Neither the right password nor the wrong one is printed.
    assert sasl_broker.env["TXSTREAM_KAFKA_PASSWORD"] not in output
    assert wrong not in output
