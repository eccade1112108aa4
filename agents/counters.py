"""OutputCounters: output records the pipeline has sent, per source partition and kind."""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from operator import attrgetter
from typing import Any

from tables.outputs import Outputs

__all__ = ["OutputCounters"]

_KIND = attrgetter("kind")


class OutputCounters:
    """Output records the pipeline has sent since this process started, per source partition.

    Process-lifetime counters (Prometheus counters reset when a process restarts); an
    output re-sent after a crash is counted again, as it is sent again (same id).
    """

    def __init__(self) -> None:
        self.alerts: Counter[int] = Counter()
        self.window_results: Counter[tuple[int, str]] = Counter()
        self.sessions: Counter[int] = Counter()
        self.late: Counter[int] = Counter()

    def add(self, partition: int, out: Outputs) -> None:
        """Count what one ``Outputs`` of ``partition`` sends."""
        if out.alerts:
            self.alerts[partition] += len(out.alerts)
        for run in out.runs:
            self.window_results[partition, run.kind] += len(run)
        # Results come grouped by kind (each kind closes its windows in turn): count the
        # groups in C rather than one Python step per result.
        for kind, results in groupby(out.results, _KIND):
            self.window_results[partition, kind] += len(list(results))
        if out.sessions:
            self.sessions[partition] += len(out.sessions)
        if out.late:
            self.late[partition] += len(out.late)

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-ready form: totals, and rows per partition (and kind)."""
        return {
            "alerts": {str(p): n for p, n in sorted(self.alerts.items())},
            "window_results": [{"partition": p, "kind": k, "count": n}
                               for (p, k), n in sorted(self.window_results.items())],
            "sessions": {str(p): n for p, n in sorted(self.sessions.items())},
            "late": {str(p): n for p, n in sorted(self.late.items())},
        }
