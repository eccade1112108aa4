"""RepeatFilter: a log message that repeats is written once per interval, with a count."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RepeatFilter", "install_repeat_filter"]


class RepeatFilter(logging.Filter):
    """Lets the first of a run of like warnings and errors through, then one per ``interval``.

    "Like" means the same logger, level and message template (``record.msg`` before its
    arguments are filled in): while a broker is unreachable, aiokafka logs the same few
    errors about a hundred times a second. The next one let through after the interval
    says how many were held back. Records below WARNING pass untouched.
    """

    def __init__(self, interval: float = 5.0, *, clock: Callable[[], float] = time.monotonic,
                 keys: int = 1000) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.keys = keys
        #: (logger, level, template) -> (when one was last let through, held back since).
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # One filter may sit on several handlers: a record is judged once.
        decided = getattr(record, "_txstream_repeat", None)
        if decided is not None:
            return bool(decided)
        passed = self._judge(record)
        record._txstream_repeat = passed
        return passed

    def _judge(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        held = seen[1] if seen is not None else 0
        if len(self._seen) >= self.keys and seen is None:
            self._seen.clear()  # many distinct messages: start afresh rather than grow
        self._seen[key] = (now, 0)
        if held:
            # The held-back count goes into the message itself, so every handler shows it.
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval:g} s]"
        return True


def install_repeat_filter(logger: logging.Logger | None = None) -> None:
    """Put one :class:`RepeatFilter` on every handler of ``logger`` (the root logger)."""
    logger = logger if logger is not None else logging.getLogger()
    repeats = RepeatFilter()
    for handler in logger.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(repeats)
