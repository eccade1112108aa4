"""Watermark of one partition: highest event time seen minus allowed lateness, idle-aware."""

from __future__ import annotations

__all__ = ["NO_WATERMARK", "Watermark"]

#: The watermark before any event: every window is still open.
NO_WATERMARK = -(2**62)


class Watermark:
    """Event-time progress of one partition.

    While data flows, ``value = highest event time seen - allowed lateness`` and never goes
    back. When no event arrives for ``idle_timeout_ms`` of wall-clock time, :meth:`on_idle`
    moves the watermark on at the wall clock's pace from where it stood at the last event
    (it does not jump to the current time), so windows close in a quiet stream and a quiet
    replay of old data is not closed all at once.
    """

    __slots__ = ("idle_timeout_ms", "lateness_ms", "max_event_ms", "value",
                 "value_at_input", "wall_at_input")

    def __init__(self, lateness_ms: int, idle_timeout_ms: int) -> None:
        self.lateness_ms = lateness_ms
        self.idle_timeout_ms = idle_timeout_ms
        self.max_event_ms = NO_WATERMARK
        self.value = NO_WATERMARK
        self.value_at_input = NO_WATERMARK
        self.wall_at_input: int | None = None

    def observe(self, event_ms: int) -> None:
        """Take one event's time into account (call in offset order)."""
        if event_ms > self.max_event_ms:
            self.max_event_ms = event_ms
            candidate = event_ms - self.lateness_ms
            if candidate > self.value:
                self.value = candidate

    def mark_input(self, wall_ms: int) -> None:
        """Record that input arrived at ``wall_ms`` (call once per batch, after observing it)."""
        self.wall_at_input = wall_ms
        self.value_at_input = self.value

    def on_idle(self, wall_ms: int) -> bool:
        """Advance with the wall clock if the partition has been quiet; True if it moved."""
        if self.wall_at_input is None or self.value_at_input == NO_WATERMARK:
            return False
        quiet_for = wall_ms - self.wall_at_input - self.idle_timeout_ms
        if quiet_for <= 0:
            return False
        candidate = self.value_at_input + quiet_for
        if candidate > self.value:
            self.value = candidate
            return True
        return False

    def to_list(self) -> list[int]:
        """Compact form for the partition record (wall time is not persisted)."""
        return [self.max_event_ms, self.value]

    def restore(self, data: list[int]) -> None:
        """Inverse of :meth:`to_list`; never moves the watermark back."""
        max_event_ms, value = data
        self.max_event_ms = max(self.max_event_ms, max_event_ms)
        self.value = max(self.value, value)
        self.value_at_input = self.value
