"""Times on the wire: ISO 8601 UTC text to epoch milliseconds and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = ["EPOCH", "ONE_MS", "format_time", "iso_to_ms", "parse_time", "second_text"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


#: Epoch ms of the minute each canonical ``YYYY-MM-DDTHH:MM:SSZ`` time starts with, keyed by
#: its first 16 characters: a stream's times share few minutes, and parsing a date was a
#: tenth of the cost of a record.
_MINUTES: dict[str, int] = {}
_MINUTES_KEPT = 1 << 16


def iso_to_ms(text: str) -> int | None:
    """Epoch ms of an ISO 8601 time (no offset means UTC; sub-ms truncated), else None."""
    canonical = len(text) == 20 and text[16] == ":" and text[19] == "Z"
    if canonical:
        seconds = text[17:19]
        if seconds.isascii() and seconds.isdigit() and seconds < "60":
            minute = _MINUTES.get(text[:16])
            if minute is not None:
                return minute + int(seconds) * 1000
        else:
            canonical = False
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer timedelta arithmetic, not .timestamp(): a float would round, not truncate.
    ms = (moment - EPOCH) // ONE_MS
    if canonical:
        if len(_MINUTES) >= _MINUTES_KEPT:
            _MINUTES.clear()
        # The same prefix with any other valid seconds is the same minute.
        _MINUTES[text[:16]] = ms - int(text[17:19]) * 1000
    return ms


@lru_cache(maxsize=1 << 17)
def second_text(seconds: int) -> str:
    """``2026-03-12T14:23:45`` for a whole number of seconds since the epoch."""
    day, second_of_day = divmod(seconds, 86_400)
    hour, second_of_hour = divmod(second_of_day, 3600)
    minute, second = divmod(second_of_hour, 60)
    date = EPOCH + timedelta(days=day)
    return (f"{date.year:04d}-{date.month:02d}-{date.day:02d}"
            f"T{hour:02d}:{minute:02d}:{second:02d}")


def format_time(ms: int) -> str:
    """ISO 8601 UTC with ``Z``, milliseconds only when nonzero: ``2026-03-12T14:23:45Z``.

    The text of each second is cached: window bounds repeat across every customer's
    output records, and sliding windows and sessions, which end at any millisecond, still
    share their seconds with many other events.
    """
    seconds, millis = divmod(ms, 1000)
    if millis:
        return f"{second_text(seconds)}.{millis:03d}Z"
    return second_text(seconds) + "Z"


def parse_time(text: str) -> int:
    """Epoch ms of an ISO 8601 time (no offset means UTC) or of epoch-ms digits.

    For command-line options such as ``--from``/``--to``; raises :class:`ValueError`.
    """
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return int(stripped)
    ms = iso_to_ms(stripped)
    if ms is None:
        msg = (
            f"not a time: {text!r} (write ISO 8601 like 2026-03-12T14:23:45Z "
            "or 2026-03-12, or epoch milliseconds)"
        )
        raise ValueError(msg)
    return ms
