"""Durations written 500ms, 30s, 5m, 1h, parsed to integer milliseconds."""

from __future__ import annotations

import re

__all__ = ["DURATION_FORMS", "format_duration", "parse_duration"]

#: How a duration is written; error messages (here and in settings) quote it.
DURATION_FORMS = "500ms, 30s, 5m, 1h or 1d, or a compound like 1h30m"

# Largest unit first: format_duration walks this order, and parse_duration demands it,
# so "30m1h" or "5m5m" (almost certainly typos) are refused rather than summed.
_UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
_UNIT_MS = dict(_UNITS)
_UNIT_RANK = {unit: rank for rank, (unit, _) in enumerate(_UNITS)}

# "ms" must be tried before "m" and "s", or "500ms" would read as 500 minutes + junk.
_PART = re.compile(r"([0-9]+)(ms|d|h|m|s)")


def parse_duration(text: str) -> int:
    """Parse ``500ms``, ``30s``, ``5m``, ``1h``, ``1d`` or a compound (``1h30m``) to ms.

    Surrounding whitespace is ignored; zero (``0s``) is allowed, since whether zero makes
    sense is the caller's decision. Anything else raises :class:`ValueError` naming the
    text and the accepted forms.
    """
    stripped = text.strip()
    if not stripped:
        msg = f"empty duration {text!r} (write {DURATION_FORMS})"
        raise ValueError(msg)
    if stripped.startswith("-"):
        msg = f"negative duration {text!r} (write {DURATION_FORMS})"
        raise ValueError(msg)
    total = 0
    position = 0
    last_rank = -1
    for match in _PART.finditer(stripped):
        rank = _UNIT_RANK[match.group(2)]
        if match.start() != position or rank <= last_rank:
            break
        total += int(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
        last_rank = rank
    if position != len(stripped) or last_rank < 0:
        msg = f"not a duration: {text!r} (write {DURATION_FORMS})"
        raise ValueError(msg)
    return total


def format_duration(ms: int) -> str:
    """Write ``ms`` in the largest exact units: 90000 -> ``1m30s``, 0 -> ``0s``."""
    if ms < 0:
        msg = f"cannot format a negative duration: {ms} ms"
        raise ValueError(msg)
    if ms == 0:
        return "0s"
    parts: list[str] = []
    rest = ms
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
