"""Throughput: events per second over a sliding wall-clock interval."""

from __future__ import annotations

import time
from collections import deque

__all__ = ["Throughput"]


class Throughput:
    """Counts events in one-second buckets and reports the rate over the last ``span`` s."""

    def __init__(self, span: float = 10.0) -> None:
        self.span = span
        self.total = 0
        self._buckets: deque[tuple[int, int]] = deque()

    def add(self, count: int, now: float | None = None) -> None:
        """Record ``count`` events at ``now`` (monotonic seconds)."""
        second = int(time.monotonic() if now is None else now)
        self.total += count
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1] = (second, self._buckets[-1][1] + count)
        else:
            self._buckets.append((second, count))

    def rate(self, now: float | None = None) -> float:
        """Events per second over the last ``span`` seconds."""
        second = int(time.monotonic() if now is None else now)
        while self._buckets and self._buckets[0][0] <= second - self.span:
            self._buckets.popleft()
        return sum(count for _, count in self._buckets) / self.span
