"""The throughput targets, each in its own process: txstream worker, ceiling, Quix peer.

Every target reads the same pre-loaded topic from the beginning. Events/s is defined the
same way for all of them (see README.md in this folder): from the moment the first fetch
batch has been processed, ``(t0, e0)``, to the moment the last of the ``N`` events has
been processed, ``t1``: ``(N - e0) / (t1 - t0)``. "Processed" means applied to the
target's state with its outputs handed to the producer; durable commits are timed
separately (``commit_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka.admin import ensure_topics, true_end_offsets
from app.kafka.security import KafkaConnection
from app.process import ManagedProcess, free_port
from app.topics import TopicNames
from tables.dedupe import TXIDS

from .procs import LogWatcher, cpu_seconds, memory_kb

__all__ = ["Context", "Measurement", "Sampler", "run_bytewax", "run_ceiling", "run_pathway",
           "run_quix", "run_txstream", "run_txstream_pair"]

TXSTREAM_KINDS = ("tumbling", "hopping", "sliding", "session")


@dataclass
class Context:
    """What every target needs: the broker, the topic, the data set, where to write."""

    kafka: KafkaConnection
    broker_url: str
    embedded: bool
    topics: TopicNames
    partitions: int
    events: int
    workdir: Path
    results_dir: Path
    stamp: str
    sample_customers: list[int]
    broker_sampler: Sampler | None = None
    #: Extra TXSTREAM_* settings for every txstream worker (``--set``).
    worker_settings: dict[str, str] = field(default_factory=dict)
    say: Callable[[str], None] = print
    timeout: float = 900.0
    #: The same records on a one-partition topic (for targets measured where a peer's
    #: single watermark matches txstream's per-partition one), if loaded.
    topics_1p: TopicNames | None = None

    def single_partition(self) -> Context:
        """This context on the one-partition copy of the topic."""
        if self.topics_1p is None:
            message = "the one-partition copy of the topic was not loaded"
            raise RuntimeError(message)
        return replace(self, topics=self.topics_1p, partitions=1, topics_1p=None)

    @property
    def source_tps(self) -> list[TopicPartition]:
        """The input topic's partitions."""
        return [TopicPartition(self.topics.transactions, p) for p in range(self.partitions)]


@dataclass
class Measurement:
    """One target's run; times are wall-clock seconds since the epoch."""

    target: str
    run: int
    events: int
    started: float
    first: float
    first_events: int
    last: float
    peak_rss_kb: int
    cpu_seconds: float | None = None
    broker_cpu_seconds: float | None = None
    committed: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """``(N - e0) / (t1 - t0)``: events after the first batch over the time they took."""
        span = self.last - self.first
        return (self.events - self.first_events) / span if span > 0 else float("nan")

    @property
    def committed_events_per_second(self) -> float | None:
        """``(N - e0) / (tc - t0)``, ``tc`` when the group had committed all ``N`` offsets."""
        if self.committed is None:
            return None
        span = self.committed - self.first
        return (self.events - self.first_events) / span if span > 0 else None

    @property
    def wall_seconds(self) -> float:
        """From process start (imports, group join, recovery) to the last event processed."""
        return self.last - self.started

    @property
    def cpu_us_per_event(self) -> float | None:
        """The target process's CPU time per event in the measured span (all threads)."""
        if self.cpu_seconds is None:
            return None
        return self.cpu_seconds / max(self.events - self.first_events, 1) * 1e6

    def to_json(self) -> dict[str, Any]:
        """Raw fields plus the derived numbers."""
        return {
            "target": self.target, "run": self.run, "events": self.events,
            "events_per_second": round(self.events_per_second, 1),
            "committed_events_per_second": _round(self.committed_events_per_second, 1),
            "wall_seconds": round(self.wall_seconds, 3),
            "measured_seconds": round(self.last - self.first, 3),
            "first_events": self.first_events,
            "peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "cpu_seconds": _round(self.cpu_seconds),
            "cpu_us_per_event": _round(self.cpu_us_per_event),
            "broker_cpu_seconds": _round(self.broker_cpu_seconds),
            "commit_seconds_after_last": _round(
                None if self.committed is None else self.committed - self.last),
            "started": self.started, "first": self.first, "last": self.last,
            **self.extra,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class Sampler:
    """Samples a process's CPU time every ``interval`` s, to charge a time span later."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            cpu = cpu_seconds(self.pid)
            if cpu is not None:
                self.samples.append((time.time(), cpu))
            await asyncio.sleep(self.interval)

    def _at(self, moment: float) -> float | None:
        before = [s for s in self.samples if s[0] <= moment]
        after = [s for s in self.samples if s[0] >= moment]
        if not before or not after:
            return None
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)

    def between(self, start: float, end: float) -> float | None:
        """CPU seconds the process used from ``start`` to ``end`` (interpolated)."""
        a, b = self._at(start), self._at(end)
        return None if a is None or b is None else b - a


async def committed_total(admin: AIOKafkaAdminClient, group: str,
                          tps: list[TopicPartition]) -> int:
    """Sum of the group's committed offsets on ``tps`` (0 before its first commit)."""
    # Partitions named explicitly: Tansu's answer to "all partitions" (OffsetFetch
    # without topics) does not decode in aiokafka.
    offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def wait_committed(ctx: Context, group: str, timeout: float = 60.0) -> float | None:
    """Wall time at which ``group`` has committed every input record (None: timed out)."""
    admin = AIOKafkaAdminClient(**ctx.kafka.client_kwargs())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if await committed_total(admin, group, ctx.source_tps) >= ctx.events:
                    return time.time()
            await asyncio.sleep(0.1)
        return None
    finally:
        await admin.close()


# -- txstream ---------------------------------------------------------------------------


def worker_env(ctx: Context, app_id: str, port: int, datadir: Path,
               topics: TopicNames | None = None, kinds: str | None = None) -> dict[str, str]:
    """Environment of a ``txstream worker``: the defaults, except what a benchmark needs."""
    env = {
        "TXSTREAM_BROKER": ctx.broker_url,
        "TXSTREAM_APP_ID": app_id,
        "TXSTREAM_TOPIC_PREFIX": (topics or ctx.topics).prefix,
        "TXSTREAM_PARTITIONS": str(ctx.partitions),
        "TXSTREAM_WEB_PORT": str(port),
        "TXSTREAM_DATADIR": str(datadir),
        "TXSTREAM_LOG_LEVEL": "info",
        # Tansu holds group joins for half the session timeout (BROKER.md fact 1).
        "TXSTREAM_SESSION_TIMEOUT": "4s",
        "TXSTREAM_EMBEDDED_BROKER": "true" if ctx.embedded else "false",
    }
    env.update(ctx.worker_settings)
    if kinds is not None:
        env["TXSTREAM_WINDOW_KINDS"] = kinds
    return env


def start_worker(ctx: Context, name: str, env: dict[str, str]) -> ManagedProcess:
    """Launch ``python -m app worker`` (the interpreter itself, so py-spy can attach)."""
    Path(env["TXSTREAM_DATADIR"]).mkdir(parents=True, exist_ok=True)
    process = ManagedProcess([sys.executable, "-m", "app", "worker", "-l", "info"], env=env,
                             cwd=ctx.workdir, log_path=ctx.workdir / f"{name}.log", name=name)
    process.start()
    return process


async def get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    """GET ``url``; (status, decoded JSON or None)."""
    async with session.get(url) as response:
        body = await response.read()
        try:
            return response.status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return response.status, None


async def run_txstream(ctx: Context, target: str, run: int, *, recovery: bool = False,
                       profile: bool = False) -> Measurement:
    """A real worker on the pre-loaded topic: ``full`` (all kinds) or ``tumbling`` only.

    Polls ``/stats/`` every 50 ms for ``events_in`` (events applied to the in-memory state,
    outputs handed to the producer) and the group's committed offsets every 100 ms (state
    written, changelogs acknowledged, offsets committed). With ``profile``, py-spy records
    two files: until the last event is processed, then until it is committed.
    """
    name = f"{target}-r{run}"
    app_id = f"{ctx.stamp}-{name}"
    if target.endswith("-1p"):
        ctx = ctx.single_partition()
    # faust_app_id(): the consumer group and changelog prefix
    group = f"{ctx.topics.prefix}{app_id}-v1"
    datadir = ctx.workdir / f"{name}-data"
    port = free_port()
    env = worker_env(ctx, app_id, port, datadir,
                     kinds="tumbling" if target.startswith("tumbling") else None)

    started = time.time()
    # The output topics are shared by every txstream run of a bench: count this run's part.
    outputs_before = await count_outputs(ctx, ctx.topics) if recovery else {}
    process = start_worker(ctx, name, env)
    watcher = LogWatcher(process.log_path, {"ready": r"Worker ready"})
    spy: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, int, float | None, int]] = []
    base = f"http://127.0.0.1:{port}"
    stats: dict[str, Any] = {}
    try:
        committer = asyncio.create_task(wait_committed(ctx, group, ctx.timeout))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            deadline = time.monotonic() + ctx.timeout
            while True:
                if not process.running:
                    message = f"{name} exited early; log tail:\n{process.log_tail()}"
                    raise RuntimeError(message)
                if time.monotonic() > deadline:
                    message = f"{name}: not done in {ctx.timeout} s; log:\n{process.log_tail()}"
                    raise TimeoutError(message)
                if profile and spy is None and "ready" in watcher.poll():
                    spy = start_profiler(ctx, process.pid, f"{name}-processing")
                try:
                    status, body = await get_json(session, base + "/stats/")
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.1)
                    continue
                now = time.time()
                if status == 200 and body:
                    stats = body
                    events = int(stats["events_in"])
                    if events > 0:
                        samples.append((now, events, cpu_seconds(process.pid),
                                        memory_kb(process.pid).get("VmRSS", 0)))
                    if events >= ctx.events:
                        break
                await asyncio.sleep(0.05)
            ready = watcher.poll().get("ready")
            results_by_kind = await window_results_by_kind(session, base)
            views = await _customer_views(session, base, ctx.sample_customers)
            if spy is not None:
                stop_profiler(spy)
                spy = start_profiler(ctx, process.pid, f"{name}-commit")
            committed = await committer
            if spy is not None:
                stop_profiler(spy)
                spy = None
            cpu_committed = cpu_seconds(process.pid)
            memory = memory_kb(process.pid)
            t0, e0, c0, _ = samples[0]
            t1, _, c1, rss_at_last = samples[-1]
            extra: dict[str, Any] = {
                "app_id": app_id,
                "ready_seconds": None if ready is None else round(ready - started, 3),
                "rss_mb_at_last_event": round(rss_at_last / 1024, 1),
                "cpu_seconds_last_to_committed": None if cpu_committed is None or c1 is None
                else round(cpu_committed - c1, 3),
                "window_results_by_kind": results_by_kind,
                "late": stats.get("late"), "alerts_seen": stats.get("alerts"),
                "dead_letters": stats.get("dead_letters"), "profiled": profile,
                "sample_views": views,
            }
            measurement = Measurement(
                target, run, ctx.events, started, t0, e0, t1, memory.get("VmHWM", 0),
                cpu_seconds=None if c0 is None or c1 is None else c1 - c0,
                broker_cpu_seconds=ctx.broker_sampler.between(t0, t1)
                if ctx.broker_sampler else None,
                committed=committed, extra=extra)
            if recovery:
                outputs = await count_outputs(ctx, ctx.topics)
                measurement.extra["output_records"] = {
                    label: n - outputs_before.get(label, 0) for label, n in outputs.items()}
                result = await measure_recovery(ctx, session, process, env, datadir, name,
                                                group, base)
                process = result.pop("_process")
                measurement.extra["recovery"] = result
        return measurement
    finally:
        if spy is not None and spy.poll() is None:
            stop_profiler(spy)
        process.terminate(timeout=15)
        shutil.rmtree(datadir, ignore_errors=True)


_RESULTS_LINE = re.compile(
    r'^txstream_window_results_total\{[^}]*kind="(?P<kind>[a-z]+)"[^}]*\} (?P<n>[0-9.e+]+)$',
    re.MULTILINE)


async def window_results_by_kind(session: aiohttp.ClientSession, base: str) -> dict[str, int]:
    """Window results sent so far per kind, from the worker's ``/metrics`` ({} if absent)."""
    try:
        async with session.get(base + "/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    counts: dict[str, int] = {}
    for match in _RESULTS_LINE.finditer(text):
        counts[match["kind"]] = counts.get(match["kind"], 0) + int(float(match["n"]))
    return counts


async def count_outputs(ctx: Context, topics: TopicNames) -> dict[str, int]:
    """Records on each output topic so far (the topics are shared by the txstream runs)."""
    names = {"alerts": topics.alerts, "window-results": topics.window_results,
             "sessions": topics.sessions, "late-transactions": topics.late,
             "transactions-dlq": topics.dead_letters}
    tps = [TopicPartition(t, p) for t in names.values() for p in range(ctx.partitions)]
    ends = await true_end_offsets(ctx.kafka, tps, timeout=60)
    return {label: sum(n for tp, n in ends.items() if tp.topic == topic)
            for label, topic in names.items()}


async def topic_bytes(kafka: KafkaConnection, ends: dict[TopicPartition, int]) -> dict[str, int]:
    """Total value bytes per topic, reading each partition up to ``ends``."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        sizes: dict[str, int] = dict.fromkeys({tp.topic for tp in ends}, 0)
        deadline = time.monotonic() + 120
        while wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(*wanted, timeout_ms=500, max_records=20_000)
            for tp, records in batches.items():
                sizes[tp.topic] += sum(len(r.value or b"") for r in records
                                       if r.offset < wanted[tp])
                if records and records[-1].offset + 1 >= wanted[tp]:
                    del wanted[tp]
        return sizes
    finally:
        await consumer.stop()


async def _customer_views(session: aiohttp.ClientSession, base: str,
                          customers: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for customer in customers:
        for kind in ("tumbling", "hopping", "sliding"):
            status, body = await get_json(session, f"{base}/customers/{customer}/windows/{kind}/")
            out[f"{customer}/{kind}"] = body if status == 200 else status
        status, body = await get_json(session, f"{base}/customers/{customer}/sessions/")
        out[f"{customer}/sessions"] = body if status == 200 else status
    return out


_RESTORED = re.compile(r"restored (\d+) changelog records in ([0-9.]+) s")


async def _restart(ctx: Context, env: dict[str, str], name: str) -> dict[str, Any]:
    """Start a worker on ``env`` and time it until ``Worker ready`` (log lines watched)."""
    port = free_port()
    env = {**env, "TXSTREAM_WEB_PORT": str(port)}
    restarted = time.time()
    process = start_worker(ctx, name, env)
    watcher = LogWatcher(process.log_path, {
        "restoring": r"Restoring state from changelog topics",
        "done": r"Done reading from changelog topics",
        "ready": r"Worker ready",
    })
    deadline = time.monotonic() + ctx.timeout
    while "ready" not in watcher.poll():
        if not process.running or time.monotonic() > deadline:
            message = f"{name}: no 'Worker ready'; log:\n{process.log_tail()}"
            process.terminate()
            raise RuntimeError(message)
        await asyncio.sleep(0.02)
    seen = dict(watcher.seen)
    restored = _RESTORED.findall(process.log_text())
    replay = (seen["done"] - seen["restoring"]) if {"done", "restoring"} <= seen.keys() else None
    return {"process": process, "base": f"http://127.0.0.1:{port}",
            "restart_to_ready_seconds": round(seen["ready"] - restarted, 3),
            "replay_seconds": _round(replay),
            "records_restored": sum(int(n) for n, _ in restored),
            "bulk_seconds": _round(sum(float(t) for _, t in restored)),
            "ready": seen["ready"]}


async def _views_loaded(ctx: Context, session: aiohttp.ClientSession,
                        base: str) -> tuple[dict[str, Any], float]:
    """The sampled views once every one answers (state loaded from RocksDB), and when."""
    deadline = time.monotonic() + ctx.timeout
    after: dict[str, Any] = {}
    while True:
        try:
            after = await _customer_views(session, base, ctx.sample_customers)
        except (aiohttp.ClientError, TimeoutError):
            after = {}
        if after and not any(v == 503 for v in after.values()):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return after, time.time()


def _on_kept_data(restart: dict[str, Any], loaded: float, identical: bool) -> dict[str, Any]:
    """The figures of a restart on the data dir the worker had (see :func:`_restart`)."""
    return {
        "restart_to_ready_seconds": restart["restart_to_ready_seconds"],
        "replay_seconds": restart["replay_seconds"],
        "records_restored": restart["records_restored"],
        "ready_to_state_loaded_seconds": round(loaded - restart["ready"], 3),
        "sample_views_identical": identical,
    }


async def measure_recovery(ctx: Context, session: aiohttp.ClientSession,
                           process: ManagedProcess, env: dict[str, str], datadir: Path,
                           name: str, group: str, base: str) -> dict[str, Any]:
    """Restart the worker three times: killed, from the changelogs alone, after a clean stop.

    First it is killed (SIGKILL) and started on the data dir it had: what its RocksDB
    files had not been given yet (up to a checkpoint interval, app/table_store.py) is
    replayed. Then its RocksDB data is deleted (every changelog record is replayed),
    then it is stopped cleanly and started on the data it has (nothing should be
    replayed). For each: the time from restart to ``Worker ready``, the changelog replay
    (Faust's "Restoring state" to "Done reading" log lines; the worker's own count of
    restored records), records per second, the time until every sampled customer
    answers again (partition state loaded from RocksDB into the pipeline), and whether
    the answers are unchanged.
    """
    # Let the last flush land before the snapshot (the worker is idle by now).
    await asyncio.sleep(1.5)
    before = await _customer_views(session, base, ctx.sample_customers)
    # Every table's changelog: the window kinds' and the duplicate check's.
    changelogs = [f"{group}-{table}-changelog" for table in (*TXSTREAM_KINDS, TXIDS)]
    tps = [TopicPartition(t, p) for t in changelogs for p in range(ctx.partitions)]
    ends = await true_end_offsets(ctx.kafka, tps, timeout=60)
    records = sum(ends.values())
    per_table = {t: sum(n for tp, n in ends.items() if tp.topic == t) for t in changelogs}
    sizes = await topic_bytes(ctx.kafka, ends)
    process.kill()
    killed = await _restart(ctx, env, f"{name}-killed")
    process = killed.pop("process")
    after_kill, loaded = await _views_loaded(ctx, session, killed["base"])
    after_kill_result = _on_kept_data(killed, loaded, before == after_kill)
    process.terminate(timeout=15)
    shutil.rmtree(datadir, ignore_errors=True)

    rebuilt = await _restart(ctx, env, f"{name}-recovery")
    process = rebuilt.pop("process")
    peak_while_recovering = memory_kb(process.pid).get("VmHWM", 0)
    after, loaded = await _views_loaded(ctx, session, rebuilt["base"])
    restart_s, replay = rebuilt["restart_to_ready_seconds"], rebuilt["replay_seconds"]
    result: dict[str, Any] = {
        "_process": process,
        "changelog_records": records,
        "changelog_records_per_table": per_table,
        "changelog_value_bytes": sizes,
        "changelog_mean_value_bytes": round(sum(sizes.values()) / max(records, 1)),
        "restart_to_ready_seconds": restart_s,
        "replay_seconds": replay,
        "records_restored": rebuilt["records_restored"],
        "ready_to_state_loaded_seconds": round(loaded - rebuilt["ready"], 3),
        "records_per_second_restart_to_ready": round(records / restart_s),
        "records_per_second_replay": round(records / replay) if replay else None,
        "peak_rss_mb_after_recovery": round(peak_while_recovering / 1024, 1),
        "sample_views_identical": before == after,
        "sample_views_compared": len(before),
    }
    # A plain restart: the data dir is kept, so only an unflushed tail would be replayed.
    process.terminate(timeout=15)
    kept = await _restart(ctx, env, f"{name}-restart")
    process = kept.pop("process")
    again, loaded = await _views_loaded(ctx, session, kept["base"])
    result["_process"] = process
    result["kept"] = _on_kept_data(kept, loaded, before == again)
    result["killed"] = after_kill_result
    result["standby"] = await _standby_catch_up(ctx, session, env, f"{name}-second", ends)
    return result


_STANDBY_OFFSET = re.compile(r'^txstream_recovery_offset\{role="standby",topic="([^"]+)",'
                             r'partition="(\d+)"\} (-?\d+)', re.MULTILINE)


async def _standby_catch_up(ctx: Context, session: aiohttp.ClientSession, env: dict[str, str],
                            name: str, ends: dict[TopicPartition, int]) -> dict[str, Any]:
    """A second worker joins the group: how fast its standby tables catch up.

    It gets half the partitions as actives (recovered from their changelogs) and follows
    the first worker's as standbys. Its ``/metrics`` say how far each standby changelog
    partition is applied; done when every one has reached its end.
    """
    datadir = Path(env["TXSTREAM_DATADIR"] + "-second")
    second = await _restart(ctx, {**env, "TXSTREAM_DATADIR": str(datadir)}, name)
    process = second.pop("process")
    first_progress = done = None
    records = 0
    try:
        deadline = time.monotonic() + ctx.timeout
        while time.monotonic() < deadline:
            try:
                async with session.get(second["base"] + "/metrics") as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            followed = {TopicPartition(m[1], int(m[2])): int(m[3])
                        for m in _STANDBY_OFFSET.finditer(text)}
            now = time.time()
            if first_progress is None and any(offset >= 0 for offset in followed.values()):
                first_progress = now
            wanted = {tp: ends.get(tp, 0) - 1 for tp in followed if ends.get(tp, 0) > 0}
            if wanted and all(followed[tp] >= last for tp, last in wanted.items()):
                done = now
                records = sum(last + 1 for last in wanted.values())
                break
            await asyncio.sleep(0.05)
    finally:
        process.terminate(timeout=15)
        shutil.rmtree(datadir, ignore_errors=True)
    if done is None:
        return {"caught_up": False}
    return {
        "caught_up": True,
        "standby_records": records,
        "restart_to_ready_seconds": second["restart_to_ready_seconds"],
        "active_records_restored": second["records_restored"],
        "ready_to_caught_up_seconds": round(done - second["ready"], 3),
        "first_record_to_caught_up_seconds": _round(
            None if first_progress is None else done - first_progress),
        "records_per_second_ready_to_caught_up": round(records / max(done - second["ready"],
                                                                     1e-3)),
        "records_per_second_first_record_to_caught_up": None if first_progress is None
        else round(records / max(done - first_progress, 1e-3)),
    }


async def run_txstream_pair(ctx: Context, run: int, target: str = "full-x2") -> Measurement:
    """Two full-pipeline workers in one consumer group on the topic: the combined rate.

    Both start together (the embedded broker keeps a first-generation member in the group
    until its session expires, BROKER.md fact 4) with the default standby replica, so
    each also follows the other's changelogs. Events are the sum of both workers' own
    ``events_in`` (``/stats/?local=1``), which counts each source offset once; the sampled
    customers' views are kept to compare with the one-worker run's.
    """
    name = f"{target}-r{run}"
    app_id = f"{ctx.stamp}-{name}"
    group = f"{app_id}-v1"
    started = time.time()
    members = []
    for n in (1, 2):
        port = free_port()
        datadir = ctx.workdir / f"{name}-w{n}-data"
        env = worker_env(ctx, app_id, port, datadir)
        members.append((start_worker(ctx, f"{name}-w{n}", env), f"http://127.0.0.1:{port}",
                        datadir))
    samples: list[tuple[float, int, float | None]] = []
    try:
        committer = asyncio.create_task(wait_committed(ctx, group, ctx.timeout))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            deadline = time.monotonic() + ctx.timeout
            while True:
                for process, _, _ in members:
                    if not process.running:
                        message = f"{process.name} exited early; log:\n{process.log_tail()}"
                        raise RuntimeError(message)
                if time.monotonic() > deadline:
                    message = f"{name}: not done in {ctx.timeout} s"
                    raise TimeoutError(message)
                counts = []
                for _, base, _ in members:
                    try:
                        status, body = await get_json(session, base + "/stats/?local=1")
                    except (aiohttp.ClientError, TimeoutError):
                        status, body = 0, None
                    counts.append(int(body["events_in"]) if status == 200 and body else None)
                now = time.time()
                if None not in counts:
                    total = sum(c for c in counts if c is not None)
                    cpu = [cpu_seconds(process.pid) for process, _, _ in members]
                    if total > 0:
                        samples.append((now, total, None if None in cpu
                                        else sum(c for c in cpu if c is not None)))
                    if total >= ctx.events:
                        break
                await asyncio.sleep(0.05)
            base = members[0][1]
            views = await _customer_views(session, base, ctx.sample_customers)
            results_by_kind: dict[str, int] = {}
            for _, member_base, _ in members:
                for kind, count in (await window_results_by_kind(session, member_base)).items():
                    results_by_kind[kind] = results_by_kind.get(kind, 0) + count
            committed = await committer
            owned = []
            for _, member_base, _ in members:
                status, body = await get_json(session, member_base + "/stats/?local=1")
                owned.append([row["partition"] for row in body["partitions"]]
                             if status == 200 and body else None)
        t0, e0, c0 = samples[0]
        t1, _, c1 = samples[-1]
        peak = sum(memory_kb(process.pid).get("VmHWM", 0) for process, _, _ in members)
        return Measurement(
            target, run, ctx.events, started, t0, e0, t1, peak,
            cpu_seconds=None if c0 is None or c1 is None else c1 - c0,
            broker_cpu_seconds=ctx.broker_sampler.between(t0, t1)
            if ctx.broker_sampler else None,
            committed=committed,
            extra={"app_id": app_id, "workers": 2, "partitions_by_worker": owned,
                   "window_results_by_kind": results_by_kind, "sample_views": views})
    finally:
        for process, _, datadir in members:
            process.terminate(timeout=15)
            shutil.rmtree(datadir, ignore_errors=True)


# -- profiler -------------------------------------------------------------------------------


def start_profiler(ctx: Context, pid: int, name: str) -> subprocess.Popen[bytes]:
    """``py-spy record`` the worker (raw collapsed stacks and an SVG flame graph)."""
    if shutil.which("py-spy") is None:
        message = "--profile needs py-spy on PATH: pip install py-spy"
        raise RuntimeError(message)
    out = ctx.results_dir / f"{ctx.stamp}-{name}.pyspy.txt"
    ctx.say(f"  py-spy recording {name} (pid {pid}) to {out}")
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_profiler(spy: subprocess.Popen[bytes]) -> None:
    """Ask py-spy to write its output (SIGINT), kill it if it hangs."""
    with contextlib.suppress(ProcessLookupError):
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


# -- subprocess targets that time themselves -------------------------------------------------


async def _run_self_timed(ctx: Context, target: str, run: int, argv: list[str],
                          group: str | None) -> Measurement:
    name = f"{target}-r{run}"
    process = ManagedProcess(argv, cwd=ctx.workdir, log_path=ctx.workdir / f"{name}.log",
                             name=name)
    started = time.time()
    process.start()
    committer = (asyncio.create_task(wait_committed(ctx, group, ctx.timeout))
                 if group else None)
    try:
        deadline = time.monotonic() + ctx.timeout
        peak = 0
        while process.running:
            peak = max(peak, memory_kb(process.pid).get("VmHWM", 0))
            if time.monotonic() > deadline:
                message = f"{name}: not done within {ctx.timeout} s; log:\n{process.log_tail()}"
                raise TimeoutError(message)
            await asyncio.sleep(0.1)
        text = process.log_text()
        marker = text.rfind("BENCH-RESULT ")
        if process.returncode != 0 or marker < 0:
            message = f"{name} failed (status {process.returncode}); log:\n{process.log_tail()}"
            raise RuntimeError(message)
        result = orjson.loads(text[marker + len("BENCH-RESULT "):].splitlines()[0])
        if result["processed"] < ctx.events or result["last"] is None:
            message = f"{name} processed {result['processed']} of {ctx.events}"
            raise RuntimeError(message)
        committed = None
        if committer is not None:
            committed = await asyncio.wait_for(committer, 30)
        return Measurement(
            target, run, ctx.events, started, result["first"], result["first_events"],
            result["last"], max(peak, int(result["peak_rss_kb"])),
            cpu_seconds=result.get("cpu_seconds"),
            broker_cpu_seconds=ctx.broker_sampler.between(result["first"], result["last"])
            if ctx.broker_sampler else None,
            committed=committed,
            extra={"group": group, "partitions": ctx.partitions,
                   **{key: result[key] for key in ("window_results", "late") if key in result}})
    finally:
        if committer is not None and not committer.done():
            committer.cancel()
        process.terminate(timeout=15)


async def run_ceiling(ctx: Context, run: int) -> Measurement:
    """The plain aiokafka consumer loop."""
    argv = [sys.executable, "-m", "bench.ceiling", "--broker", ctx.broker_url,
            "--topic", ctx.topics.transactions, "--partitions", str(ctx.partitions),
            "--events", str(ctx.events)]
    return await _run_self_timed(ctx, "ceiling", run, argv, None)


async def run_quix(ctx: Context, kind: str, run: int) -> Measurement:
    """Quix Streams: per-customer 5 min tumbling or 10 min/2 min hopping sum."""
    target = f"quix-{kind}"
    group = f"{ctx.stamp}-{target}-r{run}"
    output = f"{ctx.topics.prefix}{group}-results"
    # Explicit retention on every topic Quix reads or derives configs from (fact 8).
    await ensure_topics(ctx.kafka, {output: ctx.partitions})
    state_dir = ctx.workdir / f"{target}-r{run}-state"
    argv = [sys.executable, "-m", "bench.quix_peer", "--broker", ctx.broker_url,
            "--topic", ctx.topics.transactions, "--output", output,
            "--events", str(ctx.events), "--kind", kind, "--group", group,
            "--state-dir", str(state_dir)]
    try:
        return await _run_self_timed(ctx, target, run, argv, group)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


async def run_bytewax(ctx: Context, run: int, target: str = "bytewax-tumbling") -> Measurement:
    """Bytewax: per-customer 5 min tumbling sum to an output topic (bench/bytewax_peer.py)."""
    output = f"{ctx.topics.prefix}{ctx.stamp}-{target}-r{run}-results"
    await ensure_topics(ctx.kafka, {output: ctx.partitions})
    argv = [sys.executable, "-m", "bench.bytewax_peer", "--bootstrap", ctx.kafka.bootstrap,
            "--topic", ctx.topics.transactions, "--output", output,
            "--events", str(ctx.events)]
    return await _run_self_timed(ctx, target, run, argv, None)


async def run_pathway(ctx: Context, run: int, target: str = "pathway-tumbling") -> Measurement:
    """Pathway: per-customer 5 min tumbling sum to an output topic (bench/pathway_peer.py).

    ``pathway-tumbling`` reads the one-partition copy of the topic, where its single
    watermark means what txstream's per-partition one does; ``pathway-tumbling-4p`` the
    four partitions, where it drops much of the backlog as late (its results are counted).
    """
    if not target.endswith("-4p"):
        ctx = ctx.single_partition()
    group = f"{ctx.stamp}-{target}-r{run}"
    output = f"{ctx.topics.prefix}{group}-results"
    await ensure_topics(ctx.kafka, {output: ctx.partitions})
    argv = [sys.executable, "-m", "bench.pathway_peer", "--bootstrap", ctx.kafka.bootstrap,
            "--topic", ctx.topics.transactions, "--output", output,
            "--events", str(ctx.events), "--group", group,
            "--timeout", str(ctx.timeout)]
    return await _run_self_timed(ctx, target, run, argv, None)
