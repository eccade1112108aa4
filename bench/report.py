"""Medians over runs, the results table, and the versions of everything measured."""

from __future__ import annotations

import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from app.kafka.broker import EmbeddedBroker, resolve_tansu_binary

from .targets import Measurement

__all__ = ["format_table", "git_revision", "summarise", "versions"]

TARGET_ORDER = ("full", "tumbling", "ceiling", "quix-tumbling", "quix-hopping",
                "bytewax-tumbling", "full-x2", "full-1p", "tumbling-1p", "pathway-tumbling",
                "pathway-tumbling-4p")
LABELS = {
    "full": "txstream full pipeline",
    "tumbling": "txstream tumbling only",
    "ceiling": "ceiling (aiokafka loop)",
    "quix-tumbling": "Quix tumbling 5m",
    "quix-hopping": "Quix hopping 10m/2m",
    "bytewax-tumbling": "Bytewax tumbling 5m",
    "pathway-tumbling": "Pathway tumbling 5m, 1 partition",
    "pathway-tumbling-4p": "Pathway tumbling 5m, 4 partitions",
    "tumbling-1p": "txstream tumbling only, 1 partition",
    "full-1p": "txstream full pipeline, 1 partition",
    "full-x2": "txstream full pipeline, 2 workers",
}


def tumbling_results(m: Measurement) -> int | None:
    """Tumbling window results a run produced (a peer that drops data has fewer)."""
    if "window_results" in m.extra:
        return int(m.extra["window_results"])
    by_kind = m.extra.get("window_results_by_kind") or {}
    return by_kind.get("tumbling")


RECOVERY_KEYS = ("changelog_records", "changelog_mean_value_bytes", "restart_to_ready_seconds",
                 "replay_seconds", "records_restored", "ready_to_state_loaded_seconds",
                 "records_per_second_restart_to_ready", "records_per_second_replay")
KEPT_KEYS = ("restart_to_ready_seconds", "replay_seconds", "records_restored",
             "ready_to_state_loaded_seconds")
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "rate_achieved", "alerts_matched",
                "triggers_measured")


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(measurements: list[Measurement],
              latencies: list[dict[str, Any]]) -> dict[str, Any]:
    """Per target: medians of events/s, peak RSS, wall time, CPU; ratios; latency; recovery."""
    targets: dict[str, dict[str, Any]] = {}
    for name in TARGET_ORDER:
        runs = [m for m in measurements if m.target == name]
        if not runs:
            continue
        targets[name] = {
            "runs": len(runs),
            "events_per_second": _median([m.events_per_second for m in runs]),
            "events_per_second_all": [round(m.events_per_second, 1) for m in runs],
            "committed_events_per_second": _median([m.committed_events_per_second
                                                    for m in runs]),
            "peak_rss_mb": _median([m.peak_rss_kb / 1024 for m in runs]),
            "wall_seconds": _median([m.wall_seconds for m in runs]),
            "cpu_us_per_event": _median([m.cpu_us_per_event for m in runs]),
            "broker_cpu_share": _median([
                m.broker_cpu_seconds / (m.last - m.first)
                if m.broker_cpu_seconds is not None and m.last > m.first else None
                for m in runs]),
            "commit_seconds_after_last": _median([
                None if m.committed is None else m.committed - m.last for m in runs]),
            "tumbling_results": _median([tumbling_results(m) for m in runs]),
            "profiled": any(m.extra.get("profiled") for m in runs),
        }
    ceiling = targets.get("ceiling", {}).get("events_per_second")
    peer = targets.get("quix-tumbling", {}).get("events_per_second")
    for row in targets.values():
        rate = row["events_per_second"]
        row["ratio_to_ceiling"] = rate / ceiling if ceiling else None
        row["ratio_to_peer_tumbling"] = rate / peer if peer else None
    summary: dict[str, Any] = {"targets": targets}
    recoveries = [m.extra["recovery"] for m in measurements
                  if m.target == "full" and m.extra.get("recovery")]
    if recoveries:
        recovery: dict[str, Any] = {key: _median([r[key] for r in recoveries])
                                    for key in RECOVERY_KEYS}
        recovery["sample_views_identical"] = all(r["sample_views_identical"] for r in recoveries)
        standbys = [r["standby"] for r in recoveries if r.get("standby", {}).get("caught_up")]
        if standbys:
            recovery["standby"] = {key: _median([sb[key] for sb in standbys]) for key in (
                "standby_records", "ready_to_caught_up_seconds",
                "first_record_to_caught_up_seconds", "records_per_second_ready_to_caught_up",
                "records_per_second_first_record_to_caught_up")}
        for case in ("kept", "killed"):
            restarts = [r[case] for r in recoveries if r.get(case)]
            if restarts:
                recovery[case] = {key: _median([k[key] for k in restarts]) for key in KEPT_KEYS}
                recovery[case]["sample_views_identical"] = all(
                    k["sample_views_identical"] for k in restarts)
        summary["recovery"] = recovery
    if latencies:
        summary["latency"] = {key: _median([lat[key] for lat in latencies])
                              for key in LATENCY_KEYS}
    return summary


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(summary: dict[str, Any], runs: int) -> str:
    """The results as a Markdown table, plus latency and recovery lines."""
    what = f"median of {runs} interleaved runs" if runs > 1 else "1 run"
    lines = [
        f"throughput ({what}; events/s = events after the first batch / time to the last)",
        "",
        "| target | events/s | x ceiling | x Quix tumbling | committed events/s "
        "| peak RSS MB | wall s | CPU us/event | broker CPU | tumbling results |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in summary["targets"].items():
        label = LABELS[name] + (" (profiled)" if row["profiled"] else "")
        share = row["broker_cpu_share"]
        lines.append(
            f"| {label} | {_fmt(row['events_per_second'], ',.0f')} "
            f"| {_fmt(row['ratio_to_ceiling'], '.3f')} "
            f"| {_fmt(row['ratio_to_peer_tumbling'], '.2f')} "
            f"| {_fmt(row['committed_events_per_second'], ',.0f')} "
            f"| {_fmt(row['peak_rss_mb'], '.0f')} | {_fmt(row['wall_seconds'], '.1f')} "
            f"| {_fmt(row['cpu_us_per_event'], '.0f')} "
            f"| {'-' if share is None else f'{100 * share:.0f}%'} "
            f"| {_fmt(row['tumbling_results'], ',.0f')} |")
    for key, label in (("latency", "latency"),):
        latency = summary.get(key)
        if latency:
            lines += ["", (
                f"{label}, send -> alert visible at {latency['rate_achieved']:,.0f} events/s: "
                f"p50 {latency['p50_ms']:.0f} ms, p90 {latency['p90_ms']:.0f} ms, "
                f"p99 {latency['p99_ms']:.0f} ms, max {latency['max_ms']:.0f} ms "
                f"({latency['alerts_matched']:.0f}/{latency['triggers_measured']:.0f} alerts)")]
    for key, label in (("recovery", "recovery"),):
        recovery = summary.get(key)
        if recovery:
            replay = recovery["replay_seconds"]
            lines += ["", (
                f"{label} (data dir deleted): {recovery['changelog_records']:,.0f} changelog "
                f"records (mean value {recovery['changelog_mean_value_bytes']:,.0f} B); "
                f"restart -> Worker ready {recovery['restart_to_ready_seconds']:.1f} s "
                f"({recovery['records_per_second_restart_to_ready']:,.0f} records/s); "
                f"changelog replay alone {_fmt(replay, '.1f')} s "
                f"({_fmt(recovery['records_per_second_replay'], ',.0f')} records/s); "
                f"state loaded {recovery['ready_to_state_loaded_seconds']:.1f} s after ready; "
                f"sample views identical: {recovery['sample_views_identical']}")]
            standby = recovery.get("standby")
            if standby and standby.get("standby_records"):
                lines += ["", (
                    f"standbys (a second worker joins): its standby tables follow "
                    f"{standby['standby_records']:,.0f} changelog records in "
                    f"{standby['ready_to_caught_up_seconds']:.1f} s after its Worker ready "
                    f"({standby['records_per_second_ready_to_caught_up']:,.0f} records/s; "
                    f"{_fmt(standby['first_record_to_caught_up_seconds'], '.1f')} s from the "
                    f"first standby record: "
                    f"{_fmt(standby['records_per_second_first_record_to_caught_up'], ',.0f')}"
                    f" records/s)")]
            for case, how in (("kept", "after a clean stop"), ("killed", "after SIGKILL")):
                restart = recovery.get(case)
                if restart:
                    lines += ["", (
                        f"{label} (data dir kept, {how}): restart -> Worker ready "
                        f"{restart['restart_to_ready_seconds']:.1f} s; changelog records "
                        f"replayed {restart['records_restored']:,.0f}; state loaded "
                        f"{restart['ready_to_state_loaded_seconds']:.1f} s after ready; sample "
                        f"views identical: {restart['sample_views_identical']}")]
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The commit measured, with ``+dirty`` when the work tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, check=True, capture_output=True, text=True,
                               timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not dirty.strip():
        return head
    changed = sorted({line[3:] for line in dirty.splitlines()
                      if len(line) > 3 and line[3:].startswith(("app/", "agents/", "tables/"))})
    return f"{head}+dirty ({', '.join(changed) or 'outside app/agents/tables'})"


def versions(broker: EmbeddedBroker | None) -> dict[str, str]:
    """Python, the libraries measured, and the broker."""
    info = {
        "txstream": git_revision(),
        "python": platform.python_version(),
        "faust-streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "quixstreams": _version("quixstreams"),
        "bytewax": _version("bytewax"),
        "pathway": _version("pathway"),
        "confluent-kafka": _version("confluent-kafka"),
        "orjson": _version("orjson"),
        "rocksdict": _version("rocksdict"),
    }
    if broker is not None:
        try:
            out = subprocess.run([str(resolve_tansu_binary()), "--version"], check=True,
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            info["broker"] = out or "tansu (unknown version)"
        except (OSError, subprocess.SubprocessError) as exc:
            info["broker"] = f"tansu (version unknown: {exc})"
    else:
        info["broker"] = "external"
    return info
