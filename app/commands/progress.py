"""The progress line long commands draw on stderr: records, rate and ETA."""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import IO

__all__ = ["ProgressLine", "render_progress"]


def _eta(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_progress(label: str, done: int, total: int, rate: float | None,
                    width: int = 24) -> str:
    """``label [#####.....] done/total (pct) rate/s ETA m:ss`` (rate None: not known yet)."""
    fraction = min(done / total, 1.0) if total > 0 else 1.0
    filled = int(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    text = f"{label} [{bar}] {done:,}/{total:,} ({fraction * 100:.1f}%)"
    if rate is None:
        return f"{text}  -/s  ETA -"
    eta = _eta((total - done) / rate) if rate > 0 and done < total else ("0:00" if done >= total
                                                                         else "-")
    return f"{text}  {rate:,.0f}/s  ETA {eta}"


class ProgressLine:
    """A progress line on stderr: redrawn in place on a terminal (at most 10 times a second),
    otherwise printed as a plain line at most every ``every`` seconds.

    The rate is measured over the last ten seconds, so the ETA follows changes of pace.
    """

    def __init__(self, label: str, stream: IO[str] | None = None, *, every: float = 5.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = 0.1 if self.tty else every
        self._samples: deque[tuple[float, int]] = deque()
        self._last_draw = time.monotonic()
        self._drawn = False

    def rate(self) -> float | None:
        """Records per second over the recent samples, or None before there are two."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > 10.0:
            samples.popleft()
        if now - self._last_draw < self.every:
            return
        self._last_draw = now
        line = render_progress(self.label, done, total, self.rate())
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the redrawn line (on a terminal) so that what follows starts afresh."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
