"""The batch report, the live-table check and Kappa replay against a real broker and workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from app.kafka.admin import true_end_offsets
from app.kafka.changelog import changelog_topic, read_changelog, topic_partitions
from app.kafka.topic_io import TopicRecord, read_topic, read_until, send_raw
from app.kappa.replay import committed_offsets, version_topics
from app.records.times import parse_time
from app.testing import async_wait_until, wait_until
from app.topics import TopicNames
from tables.kindstate import META_KEY
from tables.partition import KINDS

from .conftest import Worker, WorkerFactory

pytestmark = pytest.mark.integration

# (customer, amount, event time) in send order. The 14:16 purchase of customer 1 comes after
# its 14:21 one: with 5-minute windows its window [14:15, 14:20) has closed (late), with
# 15-minute windows [14:15, 14:30) is still open whatever else shares the partition,
# because nothing sent before it is later than 14:29.
VALID = [
    (1, "100.00", "14:00:00"),
    (2, "10.00", "14:02:00"),
    (1, "4950.00", "14:03:00"),    # 5050.00 in [14:00, 14:05): an alert
    (2, "30.00", "14:09:00"),
    (2, "55.55", "14:06:00"),      # out of order, same window: not late
    (1, "20.00", "14:21:00"),
    (3, "7000.00", "14:25:00"),    # an alert
    (3, "1.00", "14:29:00"),
    (1, "5.00", "14:16:00"),       # late with 5-minute windows only
    (4, "12.34", "14:50:00"),
    (1, "40.00", "15:00:00"),      # later events close windows and sessions
    (2, "60.00", "15:05:00"),
    (3, "80.00", "15:10:00"),
]
INVALID: list[tuple[bytes | None, bytes]] = [
    (b"1", b"{not json"),
    (b"2", b'{"tx_id":"x","customer_id":2,"amount":1,"currency":"EUR",'
           b'"event_time":"2026-03-12T14:30:00Z"}'),
]
LATE_INDEX = 8
RECORDS = len(VALID) + len(INVALID)


def at(clock: str) -> str:
    return f"2026-03-12T{clock}Z"


def encoded(index: int) -> tuple[bytes, bytes]:
    customer, amount, clock = VALID[index]
    value = (f'{{"tx_id":"t{index}","customer_id":{customer},"amount":{amount},'
             f'"currency":"PLN","event_time":"{at(clock)}"}}')
    return str(customer).encode(), value.encode()


async def send_input(workers: WorkerFactory) -> None:
    records = [encoded(i) for i in range(LATE_INDEX + 1)] + INVALID + [
        encoded(i) for i in range(LATE_INDEX + 1, len(VALID))]
    await send_raw(workers.kafka, workers.topics.transactions, records)


# -- processes ------------------------------------------------------------------------


@dataclass
class Run:
    """A finished ``txstream`` command."""

    code: int
    out: str
    err: str


_WORKER_PID = re.compile(r"worker pid (\d+)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def txstream(env: Mapping[str, str], *args: str, timeout: float = 90.0, **settings: str) -> Run:
    """Run ``python -m app ARGS`` with a worker's environment; stop everything it started."""
    full = {**os.environ, **env, **{f"TXSTREAM_{k.upper()}": v for k, v in settings.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "app", *args], env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the command stops its replay worker on SIGTERM
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        for pid in _WORKER_PID.findall(err):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
        raise AssertionError(f"txstream {' '.join(args)} ran over {timeout} s:\n{err}") from None
    # A replay stops its worker before it exits, whatever the outcome.
    for pid in _WORKER_PID.findall(err):
        wait_until(lambda pid=int(pid): not _alive(pid), 10, message=f"replay worker {pid} gone")
    return Run(proc.returncode, out, err)


async def wait_applied(workers: WorkerFactory, version: int = 1,
                       kinds: tuple[str, ...] = KINDS) -> None:
    """Until every kind's table of ``version`` has flushed state for every input record."""
    async def applied() -> bool:
        for kind in kinds:
            topic = changelog_topic(workers.state_id(version), kind)
            parts = await read_changelog(workers.kafka, topic)
            done = sum(orjson.loads(p.meta)["o"] + 1 for p in (parts or {}).values() if p.meta)
            if done != RECORDS:
                return False
        return True

    await async_wait_until(applied, 60, interval=0.3, message="live tables applied the input")


def start_worker(workers: WorkerFactory) -> Worker:
    # No idle timeout in these tests: only events move the watermark, so live processing
    # and replay close exactly the same windows.
    return workers.start(idle_timeout="1h")


# -- report and check -------------------------------------------------------------------


async def test_report_output_and_check_against_the_live_tables(workers: WorkerFactory) -> None:
    worker = start_worker(workers)
    await send_input(workers)
    await wait_applied(workers, kinds=("tumbling",))

    hourly = txstream(worker.env, "report", "--window", "1h", "--format", "json")
    assert hourly.code == 0, hourly.err
    assert orjson.loads(hourly.out) == [
        {"start": at("14:00:00"), "end": at("15:00:00"), "count": 10, "total": 12183.89,
         "average": 1218.39},
        {"start": at("15:00:00"), "end": at("16:00:00"), "count": 3, "total": 180.0,
         "average": 60.0},
    ]
    assert "15 record(s)" in hourly.err and "13 transaction(s) in 2 window(s) of 1h" in hourly.err
    assert "skipped 2 invalid record(s)" in hourly.err
    assert "late" not in hourly.err  # an hour-long window was still open for 14:16

    five = txstream(worker.env, "report", "--format", "csv")  # the live window, 5m
    assert five.code == 0, five.err
    assert five.out == (
        "start,end,count,total,average\n"
        f"{at('14:00:00')},{at('14:05:00')},3,5060.00,1686.67\n"
        f"{at('14:05:00')},{at('14:10:00')},2,85.55,42.78\n"
        f"{at('14:20:00')},{at('14:25:00')},1,20.00,20.00\n"
        f"{at('14:25:00')},{at('14:30:00')},2,7001.00,3500.50\n"
        f"{at('14:50:00')},{at('14:55:00')},1,12.34,12.34\n"
        f"{at('15:00:00')},{at('15:05:00')},1,40.00,40.00\n"
        f"{at('15:05:00')},{at('15:10:00')},1,60.00,60.00\n"
        f"{at('15:10:00')},{at('15:15:00')},1,80.00,80.00\n"
    )
    assert "1 late transaction(s) not counted" in five.err

    one = txstream(worker.env, "report", "--customer", "2", "--from", at("14:05:00"),
                   "--to", at("15:10:00"), "--include-late")
    assert one.code == 0, one.err
    assert one.out == (
        "start                 end                   count   total  average\n"
        f"{at('14:05:00')}  {at('14:10:00')}      2   85.55    42.78\n"
        f"{at('15:05:00')}  {at('15:10:00')}      1   60.00    60.00\n"
        "all                                             3  145.55    48.52\n"
    )

    bad = txstream(worker.env, "report", "--window", "soon")
    assert (bad.code, bad.out) == (2, "")
    assert bad.err.strip().splitlines() == [
        "txstream report: --window: not a duration: 'soon' "
        "(write 500ms, 30s, 5m, 1h or 1d, or a compound like 1h30m)"]

    same = txstream(worker.env, "report", "--check")
    assert same.code == 0, same.err
    assert same.out == ""
    assert "compared 9 tumbling window(s)" in same.err
    assert "first 15 record(s)" in same.err and "no differences" in same.err

    # Settings changed without a replay: with 10 minutes of lateness the 14:16 purchase
    # would not have been late, so the recomputation has a window the live table lacks.
    drift = txstream(worker.env, "report", "--check", "--format", "json",
                     allowed_lateness="10m")
    assert drift.code == 1, drift.err
    assert orjson.loads(drift.out) == [
        {"customer_id": 1, "start": at("14:15:00"), "end": at("14:20:00"), "live": None,
         "recomputed": {"count": 1, "total": 5.0, "min": 5.0, "max": 5.0}}]
    assert "1 difference(s)" in drift.err

    # A damaged live table: customer 2's first window gets one grosz too much, written as
    # a complete flush (customer record, then the partition record).
    topic = changelog_topic(workers.state_id(1), "tumbling")
    parts = await read_changelog(workers.kafka, topic)
    assert parts is not None
    part = next(p for p in parts.values() if b"2" in p.records)
    assert part.meta is not None
    record = orjson.loads(part.records[b"2"])
    first = next(w for w in record["w"] if w[0] == parse_time(at("14:00:00")))
    assert first[1:3] == [1, 1000]
    first[2] += 1
    await send_raw(workers.kafka, topic,
                   [(b"2", orjson.dumps(record)), (META_KEY, part.meta)],
                   partition=part.partition)
    damaged = txstream(worker.env, "report", "--check")
    assert damaged.code == 1, damaged.err
    assert damaged.out == (
        "customer  start                 end                   live count / total"
        "  recomputed count / total\n"
        f"       2  {at('14:00:00')}  {at('14:05:00')}  1 / 10.01"
        "           1 / 10.00\n"
    )


# -- replay -------------------------------------------------------------------------------


def _output_ids(record: TopicRecord, topic: str, topics: Any) -> str:
    if topic == topics.dead_letters:
        return dict(record.headers)["txstream-source"].decode()
    value = orjson.loads(record.value or b"{}")
    for field in ("alert_id", "result_id", "session_id", "late_id"):
        if field in value:
            return str(value[field])
    raise AssertionError(f"no id in {value}")


async def _ends(workers: WorkerFactory, topic: str) -> dict[int, int]:
    from aiokafka import TopicPartition

    ends = await true_end_offsets(workers.kafka,
                                  [TopicPartition(topic, p) for p in range(4)])
    return {tp.partition: offset for tp, offset in ends.items()}


async def _tables(workers: WorkerFactory, version: int) -> dict[str, dict[int, Any]]:
    tables: dict[str, dict[int, Any]] = {}
    for kind in KINDS:
        parts = await read_changelog(workers.kafka,
                                     changelog_topic(workers.state_id(version), kind))
        assert parts is not None, (kind, version)
        tables[kind] = {p: {k: orjson.loads(v) for k, v in part.records.items()}
                        for p, part in parts.items()}
    return tables


def _windows(tables: dict[str, dict[int, Any]], kind: str = "tumbling") -> dict[int, list[Any]]:
    """customer -> [(start, count, total)] of a fixed-window table."""
    out: dict[int, list[Any]] = {}
    for records in tables[kind].values():
        for key, value in records.items():
            if key != META_KEY:
                out[int(key)] = sorted((w[0], w[1], w[2]) for w in value["w"])
    return out


@pytest.mark.slow
async def test_replay_equals_live_and_rebuilds_history_with_new_settings(
        workers: WorkerFactory) -> None:
    worker = start_worker(workers)
    await send_input(workers)
    await wait_applied(workers)
    topics = workers.topics
    outputs = [topics.alerts, topics.window_results, topics.sessions, topics.late,
               topics.dead_letters]
    live_ends = {topic: await _ends(workers, topic) for topic in outputs}

    # Same settings, version 2, outputs to the live topics again (today's behaviour, on
    # request): the same tables and the same outputs as live processing.
    replay = txstream(worker.env, "replay", "--timeout", "60s", "--outputs", "live")
    assert replay.code == 0, replay.err
    assert "the replay sent alerts, window results, sessions" in replay.out
    assert "state version 2 is caught up: 15 records" in replay.out
    assert "switch: restart the workers with TXSTREAM_STATE_VERSION=2" in replay.out
    assert "TXSTREAM_STATE_VERSION=2 txstream replay --drop 1" in replay.out
    live, replayed = await _tables(workers, 1), await _tables(workers, 2)
    assert replayed == live
    assert _windows(live)[1] == [(parse_time(at(c)), n, cents) for c, n, cents in [
        ("14:00:00", 2, 505000), ("14:20:00", 1, 2000), ("15:00:00", 1, 4000)]]
    for topic in outputs:
        records = await read_topic(workers.kafka, topic)
        before = {_output_ids(r, topic, topics): r.value for r in records
                  if r.offset < live_ends[topic][r.partition]}
        after = {_output_ids(r, topic, topics): r.value for r in records
                 if r.offset >= live_ends[topic][r.partition]}
        assert before, topic
        assert after == before, topic
    alerts = [orjson.loads(r.value or b"") for r in await read_topic(workers.kafka,
                                                                     topics.alerts)]
    assert sorted({a["alert_id"] for a in alerts}) == [
        f"1:{parse_time(at('14:00:00'))}", f"3:{parse_time(at('14:25:00'))}"]

    # A settings change, 5-minute to 15-minute windows, replayed as version 3: the whole
    # history in the new windows (the 14:16 purchase now lands in an open window). Version
    # 1 is not dropped: its worker is still running.
    again = txstream(worker.env, "replay", "--to-version", "3", "--drop-old", "--timeout",
                     "60s", tumbling="15m")
    assert again.code == 1, again.err
    assert "state version 3 is caught up: 15 records" in again.out
    assert "state version 1 NOT deleted" in again.err and "still has 1 member(s)" in again.err
    v3 = _windows(await _tables(workers, 3))
    expected = {
        1: [("14:00:00", 2, 505000), ("14:15:00", 2, 2500), ("15:00:00", 1, 4000)],
        2: [("14:00:00", 3, 9555), ("15:00:00", 1, 6000)],
        3: [("14:15:00", 2, 700100), ("15:00:00", 1, 8000)],
        4: [("14:45:00", 1, 1234)],
    }
    assert v3 == {c: [(parse_time(at(s)), n, t) for s, n, t in rows]
                  for c, rows in expected.items()}
    check = txstream(worker.env, "report", "--check", state_version="3", tumbling="15m")
    assert check.code == 0, check.err
    assert "compared 8 tumbling window(s)" in check.err

    # The replay worker of version 2 has stopped; the embedded broker may still list it
    # (BROKER.md fact 4), hence --force.
    dropped = txstream(worker.env, "replay", "--drop", "2", "--force", state_version="3")
    assert dropped.code == 0, dropped.err
    v2 = workers.state_id(2)
    assert f"deleted state version 2: topics: {', '.join(sorted(version_topics(v2)))}" in (
        dropped.out)
    assert await topic_partitions(workers.kafka, version_topics(v2)) == {}
    assert set((await committed_offsets(workers.kafka, v2, topics.transactions,
                                        4)).values()) == {-1}
    assert await topic_partitions(workers.kafka, version_topics(workers.state_id(1)))


async def _live_alert(workers: WorkerFactory, customer: int, clock: str) -> None:
    """Send one purchase over the threshold and wait until the live worker alerted."""
    value = (f'{{"tx_id":"live-{customer}","customer_id":{customer},"amount":6000.00,'
             f'"currency":"PLN","event_time":"{at(clock)}"}}').encode()
    await send_raw(workers.kafka, workers.topics.transactions,
                   [(str(customer).encode(), value)])
    await read_until(workers.kafka, workers.topics.alerts,
                     lambda rs: any(orjson.loads(r.value or b"{}")["customer_id"] == customer
                                    for r in rs), timeout=60)


@pytest.mark.slow
async def test_a_quiet_replay_sends_nothing_and_a_versioned_one_only_to_its_own_topics(
        workers: WorkerFactory) -> None:
    worker = start_worker(workers)
    await send_input(workers)
    await wait_applied(workers)
    topics = workers.topics
    outputs = topics.outputs()

    # The default: no outputs. The live worker keeps serving and alerting meanwhile.
    quiet = asyncio.create_task(asyncio.to_thread(
        txstream, worker.env, "replay", "--timeout", "60s"))
    await _live_alert(workers, 5, "15:11:00")
    done = await quiet
    assert done.code == 0, done.err
    assert "outputs: none were sent (state only)" in done.out
    versioned_v2 = TopicNames(topics.prefix, "-v2").outputs()
    assert await topic_partitions(workers.kafka, versioned_v2) == {}
    live = {topic: await read_topic(workers.kafka, topic) for topic in outputs}
    # Every record on the live topics is live processing's own: each id once, and the
    # alerts are the three the live worker sent.
    for topic, records in live.items():
        ids = [_output_ids(r, topic, topics) for r in records]
        assert len(ids) == len(set(ids)), topic
    assert sorted(orjson.loads(r.value or b"")["alert_id"] for r in live[topics.alerts]) == sorted(
        [f"1:{parse_time(at('14:00:00'))}", f"3:{parse_time(at('14:25:00'))}",
         f"5:{parse_time(at('15:10:00'))}"])

    # Versioned: the new version's outputs on topics of its own, created with the
    # configured partition count before its worker started: exactly the live records.
    versioned = txstream(worker.env, "replay", "--to-version", "3", "--outputs", "versioned",
                         "--timeout", "60s")
    assert versioned.code == 0, versioned.err
    v3 = TopicNames(topics.prefix, "-v3")
    assert "TXSTREAM_STATE_VERSION=3 TXSTREAM_OUTPUTS=versioned" in versioned.out
    assert await topic_partitions(workers.kafka, v3.outputs()) == dict.fromkeys(
        v3.outputs(), 4)
    for topic, mine in zip(outputs, v3.outputs(), strict=True):
        records = await read_topic(workers.kafka, mine)
        assert ({_output_ids(r, mine, v3): r.value for r in records}
                == {_output_ids(r, topic, topics): r.value for r in live[topic]}), topic
        assert len(records) == len(live[topic]), topic
        # Nothing reached the live topic meanwhile.
        assert len(await read_topic(workers.kafka, topic)) == len(live[topic]), topic

    # Dropping a version deletes its versioned output topics too.
    dropped = txstream(worker.env, "replay", "--drop", "3", "--force")
    assert dropped.code == 0, dropped.err
    assert await topic_partitions(workers.kafka, v3.outputs()) == {}
