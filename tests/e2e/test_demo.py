"""`txstream demo`: one command brings everything up, and Ctrl-C or SIGTERM takes it all down."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import orjson
import pytest
import urllib3

from app.exceptions import BrokerError
from app.kafka.connect import wait_for_brokers
from app.kafka.security import KafkaConnection, kafka_connection
from app.process import ManagedProcess
from app.settings import Settings
from app.testing import free_port, process_alive, wait_until

pytestmark = pytest.mark.slow


def _children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found




@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_serves_data_and_stops_everything(tmp_path: Path,
                                               stop_signal: signal.Signals) -> None:
    port = free_port()
    demo = ManagedProcess([sys.executable, "-m", "app", "demo", "--rate", "200"],
                          env={"TXSTREAM_WEB_PORT": str(port)}, cwd=tmp_path,
                          log_path=tmp_path / "demo.log", name="demo")
    with demo:
        match = demo.wait_for_log(r"dashboard:\s+(http://\S+)/dashboard/", timeout=120)
        base = match.group(1)
        assert base == f"http://127.0.0.1:{port}"
        http = urllib3.PoolManager(retries=False, timeout=10)

        def processed() -> int | None:
            body = orjson.loads(http.request("GET", f"{base}/stats/").data)
            return body["events_in"] if body["events_in"] > 0 else None
        wait_until(processed, 60, message="the demo processes generated transactions")
        helpers = _children_of(demo.pid)
        assert len(helpers) >= 3, "broker, worker and generator run under the demo"

        os.killpg(demo.pid, stop_signal) if stop_signal is signal.SIGINT else os.kill(
            demo.pid, stop_signal)
        wait_until(lambda: not demo.running, 60, message="demo exits")
        assert demo.returncode == 0, demo.log_text()[-2000:]
        wait_until(lambda: not any(process_alive(pid) for pid in helpers), 30,
                   message="no orphan broker, worker or generator")
        log = demo.log_text()
        assert "stopped" in log
        assert not re.search(r"Traceback", log), log[-2000:]


def _tansu_child(pid: int) -> int:
    """The embedded broker started by process ``pid``."""
    for child in _children_of(pid):
        try:
            if "tansu" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return child
        except OSError:
            continue
    raise AssertionError(f"no broker under process {pid}")


def test_demo_exits_non_zero_with_a_message_when_its_broker_dies(tmp_path: Path) -> None:
    demo = ManagedProcess([sys.executable, "-m", "app", "demo", "--rate", "20"],
                          env={"TXSTREAM_WEB_PORT": str(free_port())}, cwd=tmp_path,
                          log_path=tmp_path / "demo.log", name="demo")
    with demo:
        demo.wait_for_log(r"Ctrl-C stops everything", timeout=120)
        helpers = _children_of(demo.pid)
        os.kill(_tansu_child(demo.pid), signal.SIGKILL)
        wait_until(lambda: not demo.running, 60, message="demo exits")
        assert demo.returncode == 1, demo.log_text()[-2000:]
        assert "the embedded broker exited on its own" in demo.log_text()
        wait_until(lambda: not any(process_alive(pid) for pid in helpers), 30,
                   message="no orphan worker or generator")


def test_the_broker_command_exits_non_zero_with_a_message_when_its_broker_dies(
        tmp_path: Path) -> None:
    command = ManagedProcess([sys.executable, "-m", "app", "broker"], cwd=tmp_path,
                             log_path=tmp_path / "broker.log", name="broker")
    with command:
        command.wait_for_log(r"kafka://127\.0\.0\.1:\d+", timeout=60)
        os.kill(_tansu_child(command.pid), signal.SIGKILL)
        wait_until(lambda: not command.running, 30, message="the command exits")
        assert command.returncode == 1
        log = command.log_text()
        assert "txstream broker: the embedded broker (pid" in log
        assert "exited on its own with status -9" in log
        assert "Traceback" not in log


async def test_demo_over_tls(tmp_path: Path) -> None:
    port = free_port()
    demo = ManagedProcess([sys.executable, "-m", "app", "demo", "--tls", "--rate", "200"],
                          env={"TXSTREAM_WEB_PORT": str(port)}, cwd=tmp_path,
                          log_path=tmp_path / "demo.log", name="demo")
    with demo:
        match = demo.wait_for_log(r"dashboard:\s+(http://\S+)/dashboard/", timeout=120)
        base = match.group(1)
        log = demo.log_text()
        broker = re.search(r"embedded broker: kafka://(127\.0\.0\.1:\d+), only through a TLS "
                           r"proxy that requires a client certificate", log)
        assert broker is not None, log
        printed = dict(re.findall(r"^\S*\s*(TXSTREAM_KAFKA_\w+)=(\S+)$", log, re.MULTILINE))
        assert printed["TXSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SSL"
        for name in ("CA", "CERT", "KEY"):
            assert Path(printed[f"TXSTREAM_KAFKA_{name}_FILE"]).is_file()

        http = urllib3.PoolManager(retries=False, timeout=10)

        def processed() -> int | None:
            body = orjson.loads(http.request("GET", f"{base}/stats/").data)
            return body["events_in"] if body["events_in"] > 0 else None
        wait_until(processed, 60, message="the demo processes transactions over TLS")

        # The demo's broker answers only TLS with a client certificate: the printed settings
        # connect, a plaintext client is turned away.
        with_tls = kafka_connection(Settings.load(
            broker=f"kafka://{broker.group(1)}", kafka_security_protocol="SSL",
            kafka_ca_file=printed["TXSTREAM_KAFKA_CA_FILE"],
            kafka_cert_file=printed["TXSTREAM_KAFKA_CERT_FILE"],
            kafka_key_file=printed["TXSTREAM_KAFKA_KEY_FILE"]))
        await wait_for_brokers(with_tls)
        with pytest.raises(BrokerError, match="closed the connection before answering"):
            await wait_for_brokers(KafkaConnection.plain(broker.group(1), connect_timeout=5))

        helpers = _children_of(demo.pid)
        os.killpg(demo.pid, signal.SIGINT)
        wait_until(lambda: not demo.running, 60, message="demo exits")
        assert demo.returncode == 0, demo.log_text()[-2000:]
        wait_until(lambda: not any(process_alive(pid) for pid in helpers), 30,
                   message="no orphan broker, worker or generator")
        assert not Path(printed["TXSTREAM_KAFKA_CA_FILE"]).exists(), "throwaway CA deleted"
        assert "Traceback" not in demo.log_text()
