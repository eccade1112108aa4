"""``python -m bench``: throughput, latency and recovery of txstream against its ceiling and peer.

See bench/README.md for what each number means. Every target runs in its own process,
one at a time, on the same pre-loaded topic; runs are interleaved and medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import importlib.util
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from app.kafka.broker import EmbeddedBroker
from app.kafka.security import kafka_connection
from app.settings import Settings
from app.topics import TopicNames

from .latency import run_latency
from .load import LoadSpec, load_topic, make_records
from .report import format_table, git_revision, summarise, versions
from .targets import (
    Context,
    Measurement,
    Sampler,
    run_bytewax,
    run_ceiling,
    run_pathway,
    run_quix,
    run_txstream,
    run_txstream_pair,
)

THROUGHPUT = ("full", "tumbling", "ceiling", "quix-tumbling", "quix-hopping",
              "bytewax-tumbling", "pathway-tumbling", "pathway-tumbling-4p", "tumbling-1p",
              "full-1p", "full-x2")
EXTRAS = ("latency", "recovery")
#: Targets that need an optional package (the bench and bench-peers extras).
NEEDS = {"quix-tumbling": "quixstreams", "quix-hopping": "quixstreams",
         "bytewax-tumbling": "bytewax", "pathway-tumbling": "pathway",
         "pathway-tumbling-4p": "pathway"}
#: Targets on the one-partition copy of the topic (loaded only when one is selected).
SINGLE_PARTITION = ("pathway-tumbling", "tumbling-1p", "full-1p")
#: Not run unless named in --only.
ON_REQUEST = ("pathway-tumbling-4p", "tumbling-1p", "full-1p", "full-x2")
#: Run order inside one round: cheap and stateless first, the full worker last.
ORDER = ("ceiling", "quix-tumbling", "quix-hopping", "bytewax-tumbling", "pathway-tumbling",
         "pathway-tumbling-4p", "tumbling-1p", "tumbling", "full-1p", "full", "full-x2",
         "latency")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Pre-load transactions, then measure txstream (full and tumbling-only), "
                    "a plain aiokafka loop (ceiling) and Quix Streams (peer), one at a time.")
    parser.add_argument("--events", type=int, default=200_000,
                        help="transactions to pre-load (default: %(default)s)")
    parser.add_argument("--customers", type=int, default=10_000,
                        help="distinct customers (default: %(default)s)")
    parser.add_argument("--hours", type=float, default=3.0,
                        help="event-time span of the data (default: %(default)s; with "
                             "--events scaled alike, bench.memory's stretched data)")
    parser.add_argument("--runs", type=int, default=1,
                        help="interleaved rounds; medians are reported (default: 1; the "
                             "figures in the issue are medians of 3)")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of " + ", ".join(THROUGHPUT + EXTRAS)
                             + " (default: all whose package is installed, except "
                             + ", ".join(ON_REQUEST) + "; recovery needs full)")
    parser.add_argument("--broker", default=None,
                        help="kafka://host:port of an existing broker (default: start an "
                             "embedded Tansu, memory storage, stopped at the end)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latency-rate", type=float, default=2000.0,
                        help="events/s sent during the latency test (default: %(default)s)")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the txstream worker(s) of run 1 (marked as profiled);"
                             " writes bench/results/<stamp>-<target>-r1-{processing,commit}"
                             ".pyspy.txt")
    parser.add_argument("--set", action="append", default=[], metavar="TXSTREAM_X=VALUE",
                        help="a setting for every txstream worker, e.g. "
                             "--set TXSTREAM_FLUSH_INTERVAL=5s (repeatable)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (worker logs) after a successful run")
    args = parser.parse_args(argv)
    if args.only is None:
        only = [name for name in THROUGHPUT + EXTRAS if name not in ON_REQUEST
                and (name not in NEEDS or importlib.util.find_spec(NEEDS[name]) is not None)]
    else:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(THROUGHPUT + EXTRAS))
    if unknown:
        parser.error(f"--only: unknown target(s) {', '.join(unknown)}")
    if "recovery" in only and "full" not in only:
        parser.error("--only: recovery is measured on the full run; add full")
    if args.events < 1000 or args.customers < 1 or args.runs < 1:
        parser.error("--events must be >= 1000, --customers and --runs >= 1")
    args.only = only
    settings: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("TXSTREAM_"):
            parser.error(f"--set {item!r}: expected TXSTREAM_NAME=VALUE")
        settings[name] = value
    args.settings = settings
    return args


def sample_customers(records: list[tuple[bytes, bytes, int]], count: int = 8) -> list[int]:
    """The busiest customers: their windows are compared before and after recovery."""
    counts = collections.Counter(key for key, _, _ in records)
    return [int(key) for key, _ in counts.most_common(count)]


async def main_async(args: argparse.Namespace) -> int:
    """Load, measure, print, save."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    command = "python -m bench " + shlex.join(sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="txstream-bench-"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    say = print
    # Before anything runs: other people may commit while a long benchmark runs.
    revision = git_revision()
    broker: EmbeddedBroker | None = None
    sampler: Sampler | None = None
    ok = False
    try:
        if args.broker:
            broker_url = args.broker
        else:
            broker = EmbeddedBroker(log_path=workdir / "tansu.log")
            broker.start()
            broker_url = broker.url
            sampler = Sampler(broker.pid)
            sampler.start()
        # The TXSTREAM_KAFKA_* settings apply to the benchmark's clients as to txstream's.
        kafka = kafka_connection(Settings.load(broker=broker_url))
        say(f"broker {broker_url} ({'embedded Tansu' if broker else 'external'}); "
            f"work dir {workdir}")
        spec = LoadSpec(events=args.events, customers=args.customers,
                        span_ms=int(args.hours * 3_600_000))
        started = time.perf_counter()
        records = make_records(spec)
        say(f"generated {len(records):,} transactions in {time.perf_counter() - started:.1f} s")
        topics = TopicNames(f"bench{stamp.lower()}-")
        load = await load_topic(kafka, topics.transactions, records, args.partitions, say)
        topics_1p = None
        if any(name in SINGLE_PARTITION for name in args.only):
            topics_1p = TopicNames(f"bench{stamp.lower()}-p1-")
            await load_topic(kafka, topics_1p.transactions, records, 1, say)
        ctx = Context(kafka=kafka, broker_url=broker_url, embedded=broker is not None,
                      topics=topics, partitions=args.partitions, events=args.events,
                      workdir=workdir, results_dir=RESULTS, stamp=f"bench{stamp.lower()}",
                      sample_customers=sample_customers(records), broker_sampler=sampler,
                      worker_settings=args.settings, say=say,
                      timeout=max(300.0, args.events / 500), topics_1p=topics_1p)
        del records
        measurements: list[Measurement] = []
        latencies: list[dict[str, Any]] = []
        for run in range(1, args.runs + 1):
            for target in ORDER:
                if target not in args.only:
                    continue
                say(f"run {run}/{args.runs}: {target} ...")
                if target == "latency":
                    result = await run_latency(
                        ctx, run, rate=args.latency_rate, seconds=args.latency_seconds,
                        customers=args.customers)
                    latencies.append(result)
                    say(f"  p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
                        f"({result['alerts_matched']}/{result['triggers_measured']} alerts, "
                        f"{result['rate_achieved']}/s)")
                    continue
                if target == "ceiling":
                    m = await run_ceiling(ctx, run)
                elif target.startswith("quix-"):
                    m = await run_quix(ctx, target.removeprefix("quix-"), run)
                elif target.startswith("bytewax-"):
                    m = await run_bytewax(ctx, run, target)
                elif target.startswith("pathway-"):
                    m = await run_pathway(ctx, run, target)
                elif target == "full-x2":
                    m = await run_txstream_pair(ctx, run)
                else:
                    m = await run_txstream(
                        ctx, target, run, recovery=target == "full" and "recovery" in args.only,
                        profile=args.profile and run == 1)
                measurements.append(m)
                if target == "full-x2":
                    single = next((other for other in measurements if other.target == "full"
                                   and other.run == run), None)
                    if single is not None:
                        m.extra["sample_views_identical_to_full"] = (
                            m.extra["sample_views"] == single.extra.get("sample_views"))
                        say(f"  sampled views identical to the one-worker run: "
                            f"{m.extra['sample_views_identical_to_full']}; partitions "
                            f"{m.extra['partitions_by_worker']}")
                counted = m.extra.get("window_results")
                if counted is None and m.extra.get("window_results_by_kind"):
                    counted = m.extra["window_results_by_kind"].get("tumbling")
                say(f"  {m.events_per_second:,.0f} events/s, peak RSS "
                    f"{m.peak_rss_kb / 1024:.0f} MB, wall {m.wall_seconds:.1f} s"
                    + ("" if counted is None else f", {counted:,} tumbling window results"))
                recovery = m.extra.get("recovery")
                if recovery:
                    say(f"  recovery: {recovery['changelog_records']:,} changelog records, "
                        f"restart->ready {recovery['restart_to_ready_seconds']} s, replay "
                        f"{recovery['replay_seconds']} s, views identical: "
                        f"{recovery['sample_views_identical']}; data dir kept: restart->ready "
                        f"{recovery['kept']['restart_to_ready_seconds']} s, "
                        f"{recovery['kept']['records_restored']} records replayed; after "
                        f"SIGKILL: restart->ready "
                        f"{recovery['killed']['restart_to_ready_seconds']} s, "
                        f"{recovery['killed']['records_restored']} records replayed, views "
                        f"identical: {recovery['killed']['sample_views_identical']}")
        summary = summarise(measurements, latencies)
        info = {**versions(broker), "txstream": revision}
        table = format_table(summary, args.runs)
        say("")
        say(table)
        say("")
        say("versions: " + ", ".join(f"{k} {v}" for k, v in info.items()))
        say(f"command: {command}")
        say(f"data: {args.events:,} transactions, {args.customers:,} customers, "
            f"{args.partitions} partitions, loaded with {load['client']} at "
            f"{load['records_per_second']:,}/s")
        document = {
            "stamp": stamp, "command": command, "versions": info,
            "machine": {"cpus": _cpus(), "platform": sys.platform},
            "data": {**spec.describe(), "partitions": args.partitions, "load": load},
            "runs": args.runs, "worker_settings": args.settings, "summary": summary,
            "measurements": [m.to_json() for m in measurements],
            "latency": latencies, "table": table,
        }
        path = RESULTS / f"{stamp}.json"
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        say(f"saved {path}")
        ok = True
        return 0
    finally:
        if sampler is not None:
            await sampler.stop()
        if broker is not None:
            broker.stop()
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs kept in {workdir}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main() -> None:
    """Entry point."""
    args = parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
