"""RepeatFilter: a flood of like errors becomes one line per interval, with a count."""

from __future__ import annotations

import logging

from app.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, level: int = logging.ERROR,
            name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_like_errors_are_let_through_once_per_interval_with_the_count() -> None:
    clock = Clock()
    repeats = RepeatFilter(5.0, clock=clock)
    shown = []
    for step in range(1200):  # 120 a second for 10 s
        clock.now = 100.0 + step / 120
        record = _record("Unable connect to node with id %s: %s", 111, f"attempt {step}")
        if repeats.filter(record):
            shown.append(record.getMessage())
    assert shown == [
        "Unable connect to node with id 111: attempt 0",
        "Unable connect to node with id 111: attempt 600 [599 more like this in the last 5 s]",
    ]


def test_other_messages_levels_and_loggers_are_judged_apart() -> None:
    clock = Clock()
    repeats = RepeatFilter(5.0, clock=clock)
    records = [_record("a %s", 1), _record("b %s", 1), _record("a %s", 2, level=logging.WARNING),
               _record("a %s", 3, name="faust"), _record("a %s", 4)]
    assert [repeats.filter(r) for r in records] == [True, True, True, True, False]


def test_info_and_debug_are_never_held_back() -> None:
    repeats = RepeatFilter(5.0, clock=Clock())
    assert all(repeats.filter(_record("same", level=logging.INFO)) for _ in range(100))


def test_one_filter_on_several_handlers_judges_a_record_once() -> None:
    repeats = RepeatFilter(5.0, clock=Clock())
    first, second = _record("x"), _record("x")
    assert repeats.filter(first) and repeats.filter(first)  # second handler, same record
    assert not repeats.filter(second) and not repeats.filter(second)
