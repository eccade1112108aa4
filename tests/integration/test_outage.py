"""Broker loss: an outage is survived with the state kept, a broker that lost data stops cleanly.

Each test runs its own embedded broker (it is stopped, frozen or replaced), its own worker
processes and data directories.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.kafka.broker import EmbeddedBroker
from app.kafka.topic_io import read_topic
from app.process import ManagedProcess
from app.records.times import parse_time
from app.records.transaction import Transaction
from app.testing import async_wait_until, wait_until

from .conftest import PARTITIONS, Worker, WorkerFactory
from .test_recovery import assert_windows_exact, ground_truth, send

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker for this test alone: it is frozen, killed or replaced."""
    if os.environ.get("TXSTREAM_TEST_BROKER"):
        pytest.skip("stops and replaces its broker: needs the embedded one")
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        with_cont = broker.running
        if with_cont:  # a frozen broker would ignore SIGTERM until SIGKILL
            os.killpg(broker.pid, signal.SIGCONT)
        broker.stop()


@pytest.fixture
def factory(own_broker: EmbeddedBroker, unique_id: str,
            tmp_path: Path) -> Iterator[WorkerFactory]:
    settings = {
        "TXSTREAM_BROKER": own_broker.url,
        "TXSTREAM_APP_ID": unique_id,
        "TXSTREAM_TOPIC_PREFIX": f"{unique_id}-",
        "TXSTREAM_PARTITIONS": str(PARTITIONS),
        "TXSTREAM_SESSION_TIMEOUT": "4s",
        "TXSTREAM_FLUSH_INTERVAL": "500ms",
        "TXSTREAM_EMBEDDED_BROKER": "true",
        "TXSTREAM_STANDBY_REPLICAS": "0",
    }
    made = WorkerFactory(own_broker.url, unique_id, tmp_path, settings)
    try:
        yield made
    finally:
        made.stop_all()


def purchases(minute: int, customers: int = 8, per_customer: int = 3) -> list[Transaction]:
    """Events of one 5-minute window per customer, in time order."""
    start = parse_time("2026-03-12T14:00:00Z") + minute * 60_000
    return [Transaction(f"m{minute}-c{c}-{i}", c, 1_000 * c + i, "PLN", start + i * 1_000)
            for i in range(per_customer) for c in range(1, customers + 1)]


async def events_in(worker: Worker, n: int) -> bool:
    status, body = worker.get("/stats/")
    return status == 200 and body["events_in"] == n


def broker_state(worker: Worker) -> dict[str, object] | None:
    status, body = worker.get("/stats/?local=1")
    return body["broker"] if status == 200 else None


def metric(worker: Worker, name: str) -> float | None:
    status, text = worker.get("/metrics")
    assert status == 200
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_a_frozen_broker_is_an_outage_the_worker_survives_with_exact_windows(
        own_broker: EmbeddedBroker, factory: WorkerFactory) -> None:
    await factory.create_topics()
    worker = factory.start("w1")
    first = purchases(0)
    await send(factory, first, rate=None)
    await async_wait_until(lambda: events_in(worker, len(first)), 60)
    assert metric(worker, "txstream_broker_reachable") == 1.0

    os.killpg(own_broker.pid, signal.SIGSTOP)  # loses nothing, answers nothing
    state = wait_until(lambda: (s := broker_state(worker)) and s["reachable"] is False and s,
                       30, interval=0.5, message="the worker saw the outage")
    assert state["outages"] == 1 and state["last_error"]
    assert metric(worker, "txstream_broker_reachable") == 0.0
    assert (metric(worker, "txstream_broker_outages_total") or 0) == 1.0
    status, ready = worker.get("/readyz")
    assert status == 503 and [r.split(":")[0] for r in ready["reasons"]] == ["broker"]
    assert worker.process.running

    os.killpg(own_broker.pid, signal.SIGCONT)
    wait_until(lambda: (s := broker_state(worker)) and s["reachable"] is True, 30, interval=0.5,
               message="the worker saw the broker back")
    wait_until(lambda: worker.get("/readyz")[0] == 200, 60, interval=0.5,
               message="ready again")
    second = purchases(2)
    await send(factory, second, rate=None)
    await async_wait_until(lambda: events_in(worker, len(first) + len(second)), 90)
    await assert_windows_exact(worker, ground_truth(first + second))
    assert worker.process.running
    assert "Traceback" not in worker.process.log_text()


async def test_a_lost_broker_is_logged_at_a_bounded_rate_and_a_new_empty_one_stops_the_worker(
        own_broker: EmbeddedBroker, factory: WorkerFactory) -> None:
    await factory.create_topics()
    worker = factory.start("w1")
    events = purchases(0)
    await send(factory, events, rate=None)
    await async_wait_until(lambda: events_in(worker, len(events)), 60)
    port = own_broker.port
    lines_before = len(worker.process.log_text().splitlines())
    own_broker.stop()
    wait_until(lambda: (s := broker_state(worker)) and s["reachable"] is False, 30,
               interval=0.5, message="the worker saw the broker gone")
    # Without a limit aiokafka logs ~120 errors a second here: the log of ten seconds of
    # outage is what is measured (a duration, not a condition to wait for).
    await asyncio.sleep(10)
    logged = worker.process.log_text().splitlines()[lines_before:]
    errors = [line for line in logged if "[ERROR]" in line or "[WARNING]" in line]
    assert worker.process.running
    assert len(errors) < 60, f"{len(errors)} warnings and errors in ~10 s:\n" + "\n".join(
        errors[:20])
    assert any("more like this in the last 5 s" in line for line in errors)

    # The broker comes back on the same address, but empty (the embedded one forgets all).
    replacement = EmbeddedBroker(port=port, log_path=factory.base / "broker2.log")
    replacement.start()
    try:
        wait_until(lambda: not worker.process.running, 60, message="the worker stopped")
        code = worker.process.terminate()
        log = worker.process.log_text()
    finally:
        replacement.stop()
    assert code == 1
    last = log.strip().splitlines()[-1]
    assert last.startswith("txstream worker: the broker at 127.0.0.1:")
    assert "delete the data directory" in last and "txstream replay" in last
    assert "Traceback" not in log


async def test_a_restart_on_a_broker_that_lost_the_changelogs_stops_with_what_to_do(
        own_broker: EmbeddedBroker, factory: WorkerFactory) -> None:
    await factory.create_topics()
    worker = factory.start("w1")
    events = purchases(0)
    await send(factory, events, rate=None)
    await async_wait_until(lambda: events_in(worker, len(events)), 60)
    assert worker.process.terminate() == 0  # a clean stop: state written, offsets committed
    port = own_broker.port
    own_broker.stop()
    replacement = EmbeddedBroker(port=port, log_path=factory.base / "broker2.log")
    replacement.start()  # the same address, nothing on it
    try:
        again = factory.start("w1-again", datadir=worker.datadir, wait=False)
        wait_until(lambda: not again.process.running, 90, message="the worker stopped")
        log = again.process.log_text()
        assert again.process.terminate() == 1
    finally:
        replacement.stop()
    last = log.strip().splitlines()[-1]
    assert last.startswith("txstream worker: the broker at 127.0.0.1:")
    assert re.search(rf"{factory.state_id(1)}-(tumbling|hopping|sliding|session|txids)-changelog "
                     r"partition \d ends at offset 0, but the local state has reached offset "
                     r"\d+", last), last
    assert str(worker.datadir) in last
    assert "Traceback" not in log


def _command(factory: WorkerFactory, *args: str, **settings: str) -> ManagedProcess:
    env = {**factory.settings, **{f"TXSTREAM_{k.upper()}": v for k, v in settings.items()}}
    return ManagedProcess([sys.executable, "-m", "app", *args], env=env, cwd=factory.base,
                          log_path=factory.base / f"{args[0]}.log", name=args[0]).start()


@pytest.mark.parametrize("args", [("produce", "--count", "5"), ("alerts",)])
def test_a_command_gives_up_on_a_broker_that_does_not_answer(
        own_broker: EmbeddedBroker, factory: WorkerFactory, args: tuple[str, ...]) -> None:
    own_broker.stop()  # nothing answers on its address now
    command = _command(factory, *args, kafka_connect_timeout="3s")
    try:
        wait_until(lambda: not command.running, 30, message=f"{args[0]} gives up")
    finally:
        code = command.terminate()
    log = command.log_text()
    assert code == 1
    last = log.strip().splitlines()[-1]
    assert re.match(rf"txstream {args[0]}: cannot reach Kafka at 127\.0\.0\.1:\d+ within 3 s "
                    r"\(TXSTREAM_KAFKA_CONNECT_TIMEOUT\): 127\.0\.0\.1:\d+ refused the "
                    r"connection \(is the broker running\?\)", last), last
    assert "Traceback" not in log


async def test_produce_that_loses_its_broker_says_how_much_was_acknowledged(
        own_broker: EmbeddedBroker, factory: WorkerFactory) -> None:
    await factory.create_topics()
    command = _command(factory, "produce", "--rate", "500", kafka_connect_timeout="3s")
    try:
        async def some_arrived() -> bool:
            records = await read_topic(factory.kafka, factory.topics.transactions)
            return len(records) >= 500
        await async_wait_until(some_arrived, 60, interval=0.5)
        os.killpg(own_broker.pid, signal.SIGSTOP)
        wait_until(lambda: not command.running, 60, message="produce gives up")
    finally:
        os.killpg(own_broker.pid, signal.SIGCONT)
        code = command.terminate()
    log = command.log_text()
    assert code == 1
    last = log.strip().splitlines()[-1]
    assert "did not answer for 3 s (TXSTREAM_KAFKA_CONNECT_TIMEOUT)" in last
    assert re.search(r"the first [\d,]+ record\(s\) were acknowledged", last), last
    assert "Traceback" not in log
