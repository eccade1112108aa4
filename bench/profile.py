"""Summarise a ``py-spy record --format raw`` profile: where the worker's time goes.

``python -m bench.profile FILE [--top N] [--filter TEXT]`` prints the functions with the
most samples on top of the stack (self), the most samples anywhere in the stack
(inclusive), and the share of each code area (our packages, Faust, aiokafka, ...).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["Profile", "main"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

#: Code areas by path fragment, first match wins.
AREAS: tuple[tuple[str, str], ...] = (
    ("/agents/", "txstream agents"),
    ("/tables/", "txstream tables (core)"),
    ("/app/", "txstream app"),
    ("/faust/", "faust"),
    ("/mode/", "mode"),
    ("/aiokafka/", "aiokafka"),
    ("rocksdict", "rocksdict"),
    ("/aiohttp/", "aiohttp"),
    ("/asyncio/", "asyncio"),
    ("/uvloop/", "asyncio"),
    ("/venusian/", "faust"),
    ("/site-packages/", "other libraries"),
    ("/lib/python3", "stdlib"),
)


def _frame_key(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["func"], match["file"]


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def area_of(file: str) -> str:
    """The code area a source file belongs to."""
    path = "/" + file  # py-spy shortens paths to "faust/app/base.py"
    for fragment, area in AREAS:
        if fragment in path:
            return area
    return "other"


class Profile:
    """Collapsed stacks with their sample counts (thread/process frames dropped)."""

    def __init__(self, path: Path, thread: str | None = "MainThread") -> None:
        self.stacks: list[tuple[list[tuple[str, str]], int]] = []
        for line in path.read_text(errors="replace").splitlines():
            stack_text, _, count_text = line.rpartition(" ")
            if not stack_text or not count_text.isdigit():
                continue
            frames = stack_text.split(";")
            # py-spy puts "process ..." and "thread (...)" pseudo-frames first with
            # --threads / --subprocesses only; keep real frames.
            head = frames[:2]
            if (thread is not None and any(f.startswith("thread ") for f in head)
                    and not any(thread in f for f in head)):
                continue
            keys = [_frame_key(f) for f in frames
                    if not f.startswith(("process ", "thread "))]
            if keys:
                self.stacks.append((keys, int(count_text)))
        self.total = sum(count for _, count in self.stacks)

    def self_time(self) -> Counter[tuple[str, str]]:
        """Samples with each function on top of the stack."""
        out: Counter[tuple[str, str]] = Counter()
        for keys, count in self.stacks:
            out[keys[-1]] += count
        return out

    def inclusive(self) -> Counter[tuple[str, str]]:
        """Samples with each function anywhere in the stack (counted once per stack)."""
        out: Counter[tuple[str, str]] = Counter()
        for keys, count in self.stacks:
            for key in set(keys):
                out[key] += count
        return out

    def areas(self) -> Counter[str]:
        """Self samples by code area."""
        out: Counter[str] = Counter()
        for keys, count in self.stacks:
            out[area_of(keys[-1][1])] += count
        return out

    def report(self, top: int = 25, contains: str | None = None) -> str:
        """A text report: areas, top self, top inclusive (optionally only matching files)."""
        if not self.total:
            return "no samples"
        lines = [f"{self.total} samples", "", "self time by area:"]
        for area, count in self.areas().most_common():
            lines.append(f"  {100 * count / self.total:5.1f}%  {area}")
        lines += ["", f"top {top} functions by self time:"]
        for (func, file), count in self.self_time().most_common(top):
            lines.append(f"  {100 * count / self.total:5.1f}%  {func}  ({_short(file)})")
        lines += ["", f"top {top} functions by inclusive time"
                  + (f" (files containing {contains!r})" if contains else "") + ":"]
        shown = 0
        for (func, file), count in self.inclusive().most_common():
            if contains and contains not in file:
                continue
            lines.append(f"  {100 * count / self.total:5.1f}%  {func}  ({_short(file)})")
            shown += 1
            if shown >= top:
                break
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the report of a raw py-spy profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default=None,
                        help="only files whose path contains this, for the inclusive list")
    args = parser.parse_args(argv)
    print(Profile(args.path).report(args.top, args.filter))


if __name__ == "__main__":
    main()
