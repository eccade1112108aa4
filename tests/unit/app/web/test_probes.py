"""Readiness checks on a stand-in app: each state a worker passes through, and its reason."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from app.topics import TopicNames
from app.web.probes import readiness

SOURCE = TopicNames("p-").transactions


def _app(*, assigned: tuple[int, ...] = (0, 2), recovered: bool = True, remaining: int = 0,
         rebalancing: bool = False, flowing: bool = True, broker: bool | None = True,
         fatal: Exception | None = None) -> Any:
    completed = asyncio.Event()
    if recovered:
        completed.set()
    recovery = SimpleNamespace(completed=completed, active_remaining_total=lambda: remaining)
    tps = {TP(SOURCE, p) for p in assigned} | {TP("p-tumbling-changelog", 1)}
    consumer = SimpleNamespace(assignment=lambda: tps, flow_active=flowing)
    monitor = SimpleNamespace(snapshot=lambda: {
        "reachable": broker, "for_seconds": None if broker is None else 12.3,
        "last_error": None if broker else "127.0.0.1:9092: ConnectionRefusedError"})
    return SimpleNamespace(topic_names=TopicNames("p-"), consumer=consumer,
                           tables=SimpleNamespace(recovery=recovery), rebalancing=rebalancing,
                           broker_monitor=monitor, fatal_error=fatal)


def test_ready() -> None:
    ready, body = readiness(_app())
    assert ready is True
    assert body == {"ready": True, "reasons": [], "checks": [
        {"name": "assigned", "ok": True, "detail": f"partitions [0, 2] of {SOURCE}"},
        {"name": "recovered", "ok": True, "detail": "tables restored"},
        {"name": "consuming", "ok": True, "detail": "reading transactions"},
        {"name": "broker", "ok": True, "detail": "answers"}]}


def test_recovering() -> None:
    ready, body = readiness(_app(recovered=False, remaining=1234))
    assert ready is False
    assert body["reasons"] == ["recovered: restoring tables from their changelogs: 1234 "
                               "record(s) to go"]


def test_rebalancing_and_paused() -> None:
    assert readiness(_app(rebalancing=True))[1]["reasons"] == [
        "consuming: the consumer group is rebalancing"]
    assert readiness(_app(flowing=False))[1]["reasons"] == ["consuming: the consumer is paused"]


def test_no_partition_and_everything_at_once() -> None:
    ready, body = readiness(_app(assigned=(), recovered=False, remaining=5, rebalancing=True,
                                 broker=False))
    assert ready is False
    assert [reason.split(":")[0] for reason in body["reasons"]] == [
        "assigned", "recovered", "consuming", "broker"]


def test_an_outage_and_a_fatal_stop_are_not_ready() -> None:
    assert readiness(_app(broker=False))[1]["reasons"] == [
        "broker: the broker has not answered for 12 s "
        "(127.0.0.1:9092: ConnectionRefusedError)"]
    assert readiness(_app(fatal=RuntimeError("the broker lost data")))[1]["reasons"] == [
        "broker: stopping: the broker lost data"]
    assert readiness(_app(broker=None))[0] is True  # not probed yet: the other checks decide
