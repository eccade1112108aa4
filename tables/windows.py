"""Window kinds and epoch-aligned window assignment by event time (milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["WindowConfig", "WindowKind", "hopping_starts", "tumbling_start"]


class WindowKind(StrEnum):
    """The kinds of per-customer windows txstream keeps."""

    TUMBLING = "tumbling"
    HOPPING = "hopping"
    SLIDING = "sliding"
    SESSION = "session"


def tumbling_start(event_ms: int, size_ms: int) -> int:
    """Start of the epoch-aligned window ``[start, start + size)`` that holds ``event_ms``."""
    return event_ms - event_ms % size_ms


def hopping_starts(event_ms: int, size_ms: int, step_ms: int) -> range:
    """Starts of every epoch-aligned hopping window ``[s, s + size)`` holding ``event_ms``.

    Windows start every ``step``; an event lands in ``size // step`` of them, oldest first.
    """
    last = event_ms - event_ms % step_ms
    first = last - size_ms + step_ms
    return range(first, last + 1, step_ms)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Window sizes, lateness, retention and the duplicate horizon, in ms; validates itself."""

    tumbling_ms: int = 5 * 60_000
    hopping_size_ms: int = 10 * 60_000
    hopping_step_ms: int = 2 * 60_000
    sliding_ms: int = 10 * 60_000
    session_gap_ms: int = 15 * 60_000
    allowed_lateness_ms: int = 5_000
    idle_timeout_ms: int = 30_000
    retention_ms: int = 2 * 3_600_000
    alert_threshold_cents: int = 500_000
    #: How long (event time) an applied tx_id is remembered by the duplicate check.
    duplicate_horizon_ms: int = 2 * 3_600_000

    def __post_init__(self) -> None:
        for name in ("tumbling_ms", "hopping_size_ms", "hopping_step_ms", "sliding_ms",
                     "session_gap_ms", "idle_timeout_ms", "alert_threshold_cents",
                     "duplicate_horizon_ms"):
            if getattr(self, name) <= 0:
                message = f"{name} must be positive, got {getattr(self, name)}"
                raise ValueError(message)
        for name in ("allowed_lateness_ms", "retention_ms"):
            if getattr(self, name) < 0:
                message = f"{name} must not be negative, got {getattr(self, name)}"
                raise ValueError(message)
        if self.hopping_size_ms % self.hopping_step_ms:
            message = (f"hopping size {self.hopping_size_ms} ms is not a multiple of its "
                       f"step {self.hopping_step_ms} ms")
            raise ValueError(message)
