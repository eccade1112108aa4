"""Duplicates by tx_id against a real broker and workers: a file loaded twice, a conflicting
repeat on the DLQ, and repeats across SIGKILL and a rebuild from the changelogs alone."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.kafka.changelog import changelog_topic, read_changelog
from app.kafka.topic_io import read_topic, read_until, send_raw
from app.records.times import parse_time
from app.records.transaction import Transaction
from app.testing import async_wait_until, wait_until
from tables.dedupe import TXIDS
from tables.kindstate import META_KEY

from .conftest import Worker, WorkerFactory
from .test_pipeline import VALID, _line, expected_tumbling, write_input
from .test_recovery import assert_windows_exact, events_in, ground_truth, make_input, send

pytestmark = pytest.mark.integration


def _metric(worker: Worker, name: str) -> float:
    """Sum of a metric's samples over this worker's partitions."""
    status, text = worker.get("/metrics")
    assert status == 200
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def _stats(worker: Worker) -> tuple[int, int, int, int]:
    stats = worker.get("/stats/")[1]
    return (stats["events_in"], stats["duplicates"], stats["duplicate_conflicts"],
            stats["dead_letters"])


async def test_a_file_loaded_twice_counts_once_and_a_conflicting_repeat_is_dead_lettered(
        workers: WorkerFactory, tmp_path: Path) -> None:
    worker = workers.start(allowed_lateness="0s")
    source = write_input(tmp_path / "transactions.jsonl")
    for _ in range(2):  # the same file, loaded twice
        done = subprocess.run([sys.executable, "-m", "app", "produce", "--file", str(source)],
                              env={**worker.env}, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
    # a2 again, with another amount: a conflict, not a duplicate.
    conflict = _line("a2", 1, "4000.00", "2026-03-12T14:01:00Z")
    await send_raw(workers.kafka, workers.topics.transactions, [(b"1", conflict)])

    wait_until(lambda: sum(_stats(worker)[:3]) == 2 * len(VALID) + 1, 60,
               message="every record applied, skipped or dead-lettered")
    assert _stats(worker) == (len(VALID), len(VALID), 1, 1)
    for customer, windows in expected_tumbling().items():
        _, body = worker.get(f"/customers/{customer}/windows/tumbling/")
        assert [(parse_time(w["start"]), w["count"], round(w["total"] * 100))
                for w in body["windows"]] == [
            (start, count, int(total * 100)) for start, count, total in windows], customer

    # The conflict is on the DLQ with its own bytes and a reason naming a2's first offset.
    source_records = await read_topic(workers.kafka, workers.topics.transactions)
    first_a2 = min(r.offset for r in source_records if r.value is not None
                   and b'"tx_id":"a2"' in r.value and b"4900.00" in r.value)
    dlq = await read_until(workers.kafka, workers.topics.dead_letters,
                           lambda rs: len(rs) >= 1, timeout=60)
    assert [(r.key, r.value, dict(r.headers)["txstream-reason"].decode()) for r in dlq] == [
        (b"1", conflict, f"tx_id 'a2' was already applied at offset {first_a2} with other "
                         "content (amount 4900.00, not 4000.00)")]

    # Customer 2's 2500.00 + 2500.00 is exactly the threshold: counted twice it would have
    # been 10000.00 and a false alert. One alert per crossing window, customers 1 and 4.
    alerts = await read_until(workers.kafka, workers.topics.alerts,
                              lambda rs: len(rs) >= 2, timeout=60)
    assert sorted(r.key for r in alerts) == [b"1", b"4"]
    assert (_metric(worker, "txstream_duplicates_total"),
            _metric(worker, "txstream_duplicate_conflicts_total"),
            _metric(worker, "txstream_dead_letters_total")) == (len(VALID), 1, 1)

    # The batch report and the live-table check apply the same rule through the same core.
    tumbling = changelog_topic(workers.state_id(1), "tumbling")

    async def all_flushed() -> bool:
        parts = await read_changelog(workers.kafka, tumbling) or {}
        return sum(orjson.loads(p.meta)["o"] + 1 for p in parts.values()
                   if p.meta) == 2 * len(VALID) + 1

    await async_wait_until(all_flushed, 60, interval=0.3, message="live tables flushed")
    check = subprocess.run([sys.executable, "-m", "app", "report", "--check"],
                           env={**worker.env}, capture_output=True, text=True, timeout=90,
                           check=False)
    assert check.returncode == 0, check.stderr
    assert "no differences" in check.stderr
    report = subprocess.run([sys.executable, "-m", "app", "report", "--format", "json"],
                            env={**worker.env}, capture_output=True, text=True, timeout=90,
                            check=False)
    assert report.returncode == 0, report.stderr
    assert sum(row["count"] for row in orjson.loads(report.stdout)) == len(VALID)
    assert f"skipped {len(VALID)} duplicate(s)" in report.stderr
    assert "skipped 1 invalid record(s), 1 of them repeating an earlier tx_id" in report.stderr


def _repeats(txs: list[Transaction], count: int, seed: int) -> list[Transaction]:
    """``txs`` with ``count`` repeats, each a little after its original (a retried send)."""
    rng = random.Random(seed)
    stream = list(txs)
    for original in sorted(rng.sample(range(len(txs)), count), reverse=True):
        stream.insert(min(original + rng.randint(1, 50), len(stream)), txs[original])
    return stream


@pytest.mark.slow
async def test_repeats_across_sigkill_and_a_rebuild_from_the_changelogs_are_skipped(
        workers: WorkerFactory) -> None:
    txs = make_input(8_000, customers=300, seed=21)
    stream = _repeats(txs, 1_500, seed=22)
    truth = ground_truth(txs)
    worker = workers.start("w1")
    producing = asyncio.create_task(send(workers, stream, rate=1500))

    async def applied(w: Worker, n: int) -> bool:
        return await events_in(w) >= n

    await async_wait_until(lambda: applied(worker, 3_000), 60, interval=0.2)
    worker.process.kill()
    restarted = workers.start("w1-again", datadir=worker.datadir)
    await producing
    # Repeats of purchases applied before the kill, sent after the restart.
    late_repeats = txs[:200]
    await send(workers, late_repeats, rate=None)
    sent = len(stream) + len(late_repeats)
    wait_until(lambda: sum(_stats(restarted)[:2]) == sent, 120,
               message="every record applied or skipped")
    await assert_windows_exact(restarted, truth)
    assert _stats(restarted) == (len(txs), sent - len(txs), 0, 0)

    # From the changelogs alone (data directory deleted): the same state, and a repeat
    # sent now is still skipped.
    restarted.process.kill()
    shutil.rmtree(restarted.datadir)
    rebuilt = workers.start("w1-rebuilt", datadir=restarted.datadir)
    await send(workers, txs[200:300], rate=None)
    wait_until(lambda: sum(_stats(rebuilt)[:2]) == sent + 100, 120,
               message="the repeats after the rebuild skipped")
    await assert_windows_exact(rebuilt, truth, timeout=60)
    assert _stats(rebuilt) == (len(txs), sent + 100 - len(txs), 0, 0)


async def test_expired_tx_ids_leave_the_table_and_a_rebuild_holds_what_the_worker_held(
        workers: WorkerFactory) -> None:
    # One purchase a minute for two hours, in two halves; horizon (and retention) 15 min.
    start = parse_time("2026-03-12T14:00:00Z")
    txs = [Transaction(f"m{i:03d}", i % 10 + 1, 1_000 + i, "PLN", start + i * 60_000)
           for i in range(120)]
    # No idle timeout: only purchases move the watermark, so what expires is fixed.
    settings = {"duplicate_horizon": "15m", "retention": "15m", "idle_timeout": "1h"}
    worker = workers.start(**settings)
    await send(workers, txs[:60], rate=None)
    # Until the first half is in a flush: its segments are then written.
    changelog = changelog_topic(workers.state_id(1), TXIDS)

    async def stored() -> tuple[int, int]:
        """Records the table's partition records cover, and tx_ids in its segments."""
        parts = await read_changelog(workers.kafka, changelog) or {}
        return (sum(orjson.loads(p.meta)["o"] + 1 for p in parts.values() if p.meta),
                sum(len(orjson.loads(value)) for p in parts.values()
                    for key, value in p.records.items() if key != META_KEY))

    async def first_half_flushed() -> bool:
        return (await stored())[0] == 60

    await async_wait_until(first_half_flushed, 60, interval=0.3, message="first half flushed")
    await send(workers, txs[60:], rate=None)
    # The first half's segments expire (its latest purchases 14:59 + 15 min) and leave at
    # the flush after the one that passed them (flushes every 0.5 s); then the segments
    # in the changelog hold what the worker holds.

    async def settled() -> bool:
        held = _metric(worker, "txstream_remembered_tx_ids")
        return held <= 60 and await stored() == (len(txs), held)

    await async_wait_until(settled, 60, interval=0.3, message="the first half left")
    held = _metric(worker, "txstream_remembered_tx_ids")
    assert held > 0

    # From the changelogs alone, deletions included: what the worker held comes back.
    worker.process.kill()
    shutil.rmtree(worker.datadir)
    rebuilt = workers.start("w1-rebuilt", datadir=worker.datadir, **settings)
    wait_until(lambda: _metric(rebuilt, "txstream_remembered_tx_ids") == held, 60,
               message="remembered tx_ids after the rebuild")
    # The newest purchase again is a duplicate; the oldest again is past the horizon:
    # applied, and late for every window (it changes none).
    await send(workers, [txs[-1], txs[0]], rate=None)
    wait_until(lambda: _stats(rebuilt)[:2] == (len(txs) + 1, 1), 60,
               message="one duplicate, one late repeat")
    late = rebuilt.get("/stats/")[1]["late"]
    assert late == {"tumbling": 1, "hopping": 1, "sliding": 1, "session": 1}
