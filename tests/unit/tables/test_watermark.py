"""Watermark (monotonic, lateness, idle at wall-clock pace, restore) and DueQueue."""

from __future__ import annotations

from datetime import UTC, datetime

from tables.schedule import DueQueue
from tables.watermark import NO_WATERMARK, Watermark
from tests.unit.tables.core_helpers import MIN, SEC, at, ms

LATENESS = 5 * SEC
IDLE = 30 * SEC
#: Wall clock of the test: two hours after the event times (a replay of old data).
WALL = ms(datetime(2026, 3, 12, 16, 0, tzinfo=UTC))


def _watermark() -> Watermark:
    return Watermark(LATENESS, IDLE)


def _seen(*times: int) -> Watermark:
    wm = _watermark()
    for t in times:
        wm.observe(t)
    return wm


# -- observe ----------------------------------------------------------------------------


def test_new__no_watermark() -> None:
    wm = _watermark()
    assert (wm.value, wm.max_event_ms, wm.to_list(), wm.wall_at_input) == (
        NO_WATERMARK, NO_WATERMARK, [NO_WATERMARK, NO_WATERMARK], None)


def test_observe__highest_event_minus_lateness() -> None:
    wm = _seen(at("14:00"))
    assert (wm.value, wm.max_event_ms) == (at("13:59:55"), at("14:00"))


def test_observe__sequence_of_values() -> None:
    wm = _watermark()
    out = []
    for t in ("14:00", "14:00:03", "13:59", "14:00:03", "14:02", "14:01:59.999"):
        wm.observe(at(t))
        out.append((wm.max_event_ms, wm.value))
    assert out == [
        (at("14:00"), at("13:59:55")),
        (at("14:00:03"), at("13:59:58")),
        (at("14:00:03"), at("13:59:58")),  # older event: no change
        (at("14:00:03"), at("13:59:58")),  # equal event: no change
        (at("14:02"), at("14:01:55")),
        (at("14:02"), at("14:01:55")),
    ]


def test_observe__zero_lateness() -> None:
    wm = Watermark(0, IDLE)
    wm.observe(at("14:00"))
    assert wm.value == at("14:00")


def test_observe__epoch_and_negative_times() -> None:
    out = []
    wm = _watermark()
    for t in (-10 * SEC, 0, 3 * SEC):
        wm.observe(t)
        out.append(wm.value)
    assert out == [-15 * SEC, -5 * SEC, -2 * SEC]


# -- idle -------------------------------------------------------------------------------


def test_on_idle__never_before_any_input() -> None:
    wm = _watermark()
    assert (wm.on_idle(WALL + 10 * MIN), wm.value) == (False, NO_WATERMARK)


def test_on_idle__not_without_a_marked_batch() -> None:
    wm = _seen(at("14:00"))
    assert (wm.on_idle(WALL + 10 * MIN), wm.value) == (False, at("13:59:55"))


def test_on_idle__not_when_the_batch_had_no_events() -> None:
    wm = _watermark()
    wm.mark_input(WALL)
    assert (wm.on_idle(WALL + 10 * MIN), wm.value) == (False, NO_WATERMARK)


def test_on_idle__waits_for_the_timeout_then_follows_the_wall_clock() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)
    out = []
    for wall in (WALL, WALL + 29_999, WALL + IDLE, WALL + IDLE + 1, WALL + IDLE + 1,
                 WALL + IDLE + 10 * SEC, WALL + IDLE + 5 * MIN):
        out.append((wm.on_idle(wall), wm.value))
    assert out == [
        (False, at("13:59:55")),
        (False, at("13:59:55")),
        (False, at("13:59:55")),  # exactly the timeout: still waiting
        (True, at("13:59:55") + 1),
        (False, at("13:59:55") + 1),  # same wall time again: no move
        (True, at("14:00:05")),
        (True, at("14:04:55")),  # five minutes of wall clock, five of event time
    ]


def test_on_idle__does_not_jump_to_the_wall_clock() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)  # the wall clock is two hours ahead of the data
    wm.on_idle(WALL + IDLE + 1 * MIN)
    assert wm.value == at("14:00:55")


def test_on_idle__wall_clock_going_back_never_moves_it_back() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)
    moved = [wm.on_idle(WALL + IDLE + MIN), wm.on_idle(WALL + IDLE + 10 * SEC),
             wm.on_idle(WALL - MIN)]
    assert (moved, wm.value) == ([True, False, False], at("14:00:55"))


def test_on_idle__new_input_never_moves_it_back_and_restarts_the_idle_clock() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)
    wm.on_idle(WALL + IDLE + 2 * MIN)  # -> 14:01:55
    wm.observe(at("14:01"))  # newer than anything seen, older than the idle watermark
    after_input = (wm.max_event_ms, wm.value)
    wm.mark_input(WALL + 3 * MIN)
    out = [after_input]
    for wall in (WALL + 3 * MIN + IDLE, WALL + 3 * MIN + IDLE + 7 * SEC):
        wm.on_idle(wall)
        out.append((wm.max_event_ms, wm.value))
    assert out == [
        (at("14:01"), at("14:01:55")),
        (at("14:01"), at("14:01:55")),  # idle clock restarted at the new batch
        (at("14:01"), at("14:02:02")),  # from where it stood, not from the events
    ]


def test_on_idle__data_drives_it_again_once_it_catches_up() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)
    wm.on_idle(WALL + IDLE + MIN)  # -> 14:00:55
    wm.observe(at("14:03"))
    assert (wm.max_event_ms, wm.value) == (at("14:03"), at("14:02:55"))


def test_on_idle__measured_from_the_last_batch_not_the_first() -> None:
    wm = _seen(at("14:00"))
    wm.mark_input(WALL)
    wm.observe(at("14:00:10"))
    wm.mark_input(WALL + 20 * SEC)
    moved = wm.on_idle(WALL + 20 * SEC + IDLE)
    wm.on_idle(WALL + 20 * SEC + IDLE + 3 * SEC)
    assert (moved, wm.value) == (False, at("14:00:08"))


# -- persistence ------------------------------------------------------------------------


def test_to_list() -> None:
    wm = _seen(at("14:00"), at("14:02"))
    assert wm.to_list() == [at("14:02"), at("14:01:55")]


def test_restore__into_a_fresh_watermark() -> None:
    wm = _watermark()
    wm.restore([at("14:02"), at("14:01:55")])
    assert (wm.max_event_ms, wm.value, wm.value_at_input, wm.wall_at_input) == (
        at("14:02"), at("14:01:55"), at("14:01:55"), None)


def test_restore__idle_advanced_value_survives() -> None:
    wm = _watermark()
    wm.restore([at("14:02"), at("14:10")])  # the watermark had idled past the data
    wm.observe(at("14:05"))
    assert (wm.max_event_ms, wm.value) == (at("14:05"), at("14:10"))


def test_restore__never_moves_back() -> None:
    wm = _seen(at("14:10"))
    wm.restore([at("14:02"), at("14:01:55")])
    assert (wm.max_event_ms, wm.value) == (at("14:10"), at("14:09:55"))


def test_restore__idles_only_after_the_next_batch() -> None:
    wm = _watermark()
    wm.restore([at("14:02"), at("14:01:55")])
    before = wm.on_idle(WALL + 10 * MIN)  # wall time is not persisted
    wm.mark_input(WALL)
    after = wm.on_idle(WALL + IDLE + SEC)
    assert (before, after, wm.value) == (False, True, at("14:01:56"))


# -- DueQueue ---------------------------------------------------------------------------


def test_due_queue__pops_due_items_oldest_first_in_push_order() -> None:
    queue: DueQueue[str] = DueQueue()
    for due, item in [(30, "c"), (10, "a"), (20, "b1"), (20, "b2"), (10, "a2"), (40, "d")]:
        queue.push(due, item)
    first = list(queue.pop_due(20))
    second = list(queue.pop_due(20))
    third = list(queue.pop_due(10**9))
    assert (first, second, third, len(queue)) == (
        [(10, "a"), (10, "a2"), (20, "b1"), (20, "b2")], [], [(30, "c"), (40, "d")], 0)


def test_due_queue__limit_is_inclusive() -> None:
    queue: DueQueue[int] = DueQueue()
    queue.push(100, 1)
    assert (list(queue.pop_due(99)), list(queue.pop_due(100))) == ([], [(100, 1)])


def test_due_queue__len_counts_items_and_clear_forgets() -> None:
    queue: DueQueue[int] = DueQueue()
    for due in (5, 5, 5, 7):
        queue.push(due, due)
    size = len(queue)
    queue.clear()
    assert (size, len(queue), list(queue.pop_due(10**9))) == (4, 0, [])


def test_due_queue__push_after_pop_of_same_time() -> None:
    queue: DueQueue[str] = DueQueue()
    queue.push(5, "x")
    popped = list(queue.pop_due(5))
    queue.push(5, "y")
    assert (popped, list(queue.pop_due(5))) == ([(5, "x")], [(5, "y")])
