"""Process measurements: peak RSS and CPU time from /proc, log lines as they appear."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

__all__ = ["LogWatcher", "cpu_seconds", "memory_kb", "peak_rss_kb"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    """``VmHWM`` (peak resident set) and ``VmRSS`` of a live process, in kB ({} if gone).

    Read from /proc/PID/status, which needs no extra package; psutil's ``memory_info``
    gives the current RSS only, not the peak.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = int(rest.split()[0])
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (all its threads), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM), in kB.

    Not ``getrusage``: its ``ru_maxrss`` survives ``execve``, so a child started by a big
    parent would report the parent's size.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class LogWatcher:
    """Notes the wall time at which each pattern first appears in a growing log file."""

    def __init__(self, path: Path, patterns: dict[str, str]) -> None:
        self.path = path
        self.patterns = {name: re.compile(p, re.MULTILINE) for name, p in patterns.items()}
        self.seen: dict[str, float] = {}
        self._offset = 0
        self._tail = ""

    def poll(self) -> dict[str, float]:
        """Read what was added since the last call; return every pattern seen so far."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return self.seen
        if not data:
            return self.seen
        now = time.time()
        self._offset += len(data)
        # Keep a partial last line so that a pattern split across two reads still matches.
        text = self._tail + data.decode("utf-8", errors="replace")
        complete, _, self._tail = text.rpartition("\n")
        for name, pattern in self.patterns.items():
            if name not in self.seen and pattern.search(complete):
                self.seen[name] = now
        return self.seen
