"""Is the worker's memory flat in the number of events? The full pipeline over 1x, 2x, 4x.

Each size is the benchmark's data set stretched in event time: N events over 3 hours,
2N over 6 hours, 4N over 12 hours, same customers, same rate per customer. Windows leave
the state after the retention (2 h of event time), so a worker that keeps only what it
must needs the same memory for all three; one that keeps events, windows or outputs
grows with them. Each size runs a fresh full-pipeline worker on its own topic, and the
peers named by ``--peers`` on the same topic (Quix Streams tumbling by default, so the
steady-state ratio is measured on the same stretched data):

    python -m bench.memory [--events 200000] [--multiples 1,2,4] [--peers quix-tumbling]
                           [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

from app.kafka.broker import EmbeddedBroker
from app.kafka.security import KafkaConnection
from app.topics import TopicNames

from .load import LoadSpec, load_topic, make_records
from .targets import Context, Measurement, run_quix, run_txstream

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"


#: Targets bench.memory can run besides the full pipeline, on the same topic.
PEERS = ("quix-tumbling", "tumbling")


async def _run_peer(ctx: Context, name: str, run: int) -> Measurement:
    if name == "tumbling":
        return await run_txstream(ctx, "tumbling", run)
    return await run_quix(ctx, name.removeprefix("quix-"), run)


async def measure(events: int, customers: int, multiples: list[int], keep: bool = False,
                  peers: tuple[str, ...] = ("quix-tumbling",),
                  settings: dict[str, str] | None = None,
                  runs: int = 1) -> list[dict[str, Any]]:
    """Peak RSS and events/s of a full-pipeline worker (and peers) per multiple of the data.

    With ``runs`` > 1 the full pipeline and the peers take turns on each size's topic,
    run after run: the machine's speed drifts over minutes, and a ratio of two runs
    minutes apart drifts with it. Rates are the medians; each run's ratio is kept.
    """
    workdir = Path(tempfile.mkdtemp(prefix="txstream-bench-memory-"))
    broker = EmbeddedBroker(log_path=workdir / "tansu.log")
    broker.start()
    rows: list[dict[str, float]] = []
    try:
        base = LoadSpec(events=events, customers=customers)
        for multiple in multiples:
            spec = replace(base, events=events * multiple, span_ms=base.span_ms * multiple)
            records = make_records(spec)
            stamp = f"mem{int(time.time())}x{multiple}"
            topics = TopicNames(f"{stamp}-")
            kafka = KafkaConnection.plain(broker.url)
            await load_topic(kafka, topics.transactions, records, 4, print)
            del records
            ctx = Context(kafka=kafka, broker_url=broker.url, embedded=True,
                          topics=topics, partitions=4, events=spec.events, workdir=workdir,
                          results_dir=RESULTS, stamp=stamp, sample_customers=[],
                          timeout=max(300.0, spec.events / 500),
                          worker_settings=dict(settings or {}))
            print(f"{spec.events:,} events over {spec.span_ms / 3_600_000:.0f} h ...")
            full: list[Measurement] = []
            by_peer: dict[str, list[Measurement]] = {peer: [] for peer in peers}
            for run in range(1, runs + 1):
                m = await run_txstream(ctx, "full", run)
                full.append(m)
                print(f"  run {run}: peak RSS {m.peak_rss_kb / 1024:.0f} MB, "
                      f"{m.events_per_second:,.0f} events/s")
                for peer in peers:
                    print(f"  {peer} ...")
                    pm = await _run_peer(ctx, peer, run)
                    by_peer[peer].append(pm)
                    print(f"  {peer}: {pm.events_per_second:,.0f} events/s, peak RSS "
                          f"{pm.peak_rss_kb / 1024:.0f} MB; full / {peer} "
                          f"{m.events_per_second / pm.events_per_second:.2f}")
            row: dict[str, Any] = {
                "multiple": multiple, "events": spec.events,
                "hours": spec.span_ms / 3_600_000,
                "peak_rss_mb": max(m.peak_rss_kb for m in full) / 1024,
                "last_rss_mb": max(float(m.extra["rss_mb_at_last_event"]) for m in full),
                "events_per_second": median(m.events_per_second for m in full)}
            for peer, measured in by_peer.items():
                row[f"{peer} events_per_second"] = median(
                    pm.events_per_second for pm in measured)
                row[f"{peer} peak_rss_mb"] = max(pm.peak_rss_kb for pm in measured) / 1024
                row[f"{peer} ratios"] = [m.events_per_second / pm.events_per_second
                                         for m, pm in zip(full, measured, strict=True)]
            rows.append(row)
    finally:
        broker.stop()
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse the options, measure, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--multiples", default="1,2,4")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs per size, the full pipeline and the peers taking turns; "
                             "rates are medians (default: %(default)s)")
    parser.add_argument("--peers", default="quix-tumbling",
                        help="comma list of " + ", ".join(PEERS) + " run on each size's "
                             "topic after the full pipeline ('' for none)")
    parser.add_argument("--set", action="append", default=[], metavar="TXSTREAM_X=VALUE",
                        help="a setting for every txstream worker (repeatable)")
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set)
    multiples = [int(part) for part in args.multiples.split(",")]
    peers = tuple(name.strip() for name in args.peers.split(",") if name.strip())
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)}")
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    rows = asyncio.run(measure(args.events, args.customers, multiples, args.keep, peers,
                               settings, args.runs))
    first = rows[0]["peak_rss_mb"]
    extra = "".join(f" {peer} events/s | full / {peer} |" for peer in peers)
    print("\n| events | event-time span | peak RSS MB | x first | RSS at last event MB "
          "| events/s |" + extra)
    print("|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(peers))
    for row in rows:
        cells = "".join(
            f" {row[f'{peer} events_per_second']:,.0f} | "
            f"{row['events_per_second'] / row[f'{peer} events_per_second']:.2f} |"
            for peer in peers)
        print(f"| {row['events']:,.0f} | {row['hours']:.0f} h | {row['peak_rss_mb']:.0f} | "
              f"{row['peak_rss_mb'] / first:.2f} | {row['last_rss_mb']:.0f} | "
              f"{row['events_per_second']:,.0f} |" + cells)
    if args.runs > 1:
        print(f"medians of {args.runs} runs each; full / peer run by run:")
        for row in rows:
            for peer in peers:
                ratios = ", ".join(f"{ratio:.2f}" for ratio in row[f"{peer} ratios"])
                print(f"  {row['hours']:.0f} h, {peer}: {ratios}")
    print("command: python -m bench.memory " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
