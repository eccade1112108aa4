"""Late events across every kind, the "tunnel" burst of old events, and idle closing."""

from __future__ import annotations

from datetime import UTC, datetime

from tables.outputs import LateEvent, Outputs, SessionResult, WindowResult
from tables.partition import PartitionState
from tests.unit.tables.core_helpers import (
    CONFIG,
    MIN,
    SEC,
    Tx,
    at,
    batch,
    fixed_rows,
    ms,
    session_rows,
    sliding_rows,
)

#: The wall clock: two hours after the event times (as in a quiet replay of old data).
WALL = ms(datetime(2026, 3, 12, 16, 0, tzinfo=UTC))
IDLE = CONFIG.idle_timeout_ms
ALL = ("tumbling", "hopping", "sliding", "session")
LATE_FIXED_AND_SLIDING = ("tumbling", "hopping", "sliding")


def _wr(kind: str, customer: int, start: str, end: str, count: int, total: int, lo: int,
        hi: int) -> WindowResult:
    return WindowResult(kind, customer, at(start), at(end), count, total, lo, hi)


def test_late__lists_every_kind_it_was_late_for() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch([Tx("a", 1, 100, at("14:01")), Tx("b", 1, 200, at("14:10:05"))]))
    late = Tx("c", 1, 300, at("14:04"))  # watermark 14:10:00
    out = ps.apply([(2, late)])
    assert (out, fixed_rows(ps.tumbling, 1), fixed_rows(ps.hopping, 1),
            session_rows(ps.sessions, 1), ps.late_counts()) == (
        Outputs(late=[LateEvent(2, late, LATE_FIXED_AND_SLIDING, at("14:10"))]),
        [(at("14:00"), at("14:05"), 1, 100, 100, 100, True, False),
         (at("14:10"), at("14:15"), 1, 200, 200, 200, False, False)],
        [  # added only to the two hopping windows still open
            (at("13:52"), at("14:02"), 1, 100, 100, 100, True, False),
            (at("13:54"), at("14:04"), 1, 100, 100, 100, True, False),
            (at("13:56"), at("14:06"), 1, 100, 100, 100, True, False),
            (at("13:58"), at("14:08"), 1, 100, 100, 100, True, False),
            (at("14:00"), at("14:10"), 1, 100, 100, 100, True, False),
            (at("14:02"), at("14:12"), 2, 500, 200, 300, False, False),
            (at("14:04"), at("14:14"), 2, 500, 200, 300, False, False),
            (at("14:06"), at("14:16"), 1, 200, 200, 200, False, False),
            (at("14:08"), at("14:18"), 1, 200, 200, 200, False, False),
            (at("14:10"), at("14:20"), 1, 200, 200, 200, False, False),
        ],
        [(at("14:01"), at("14:10:05"), 3, 600, 100, 300, False)],  # session span still open
        {"tumbling": 1, "hopping": 1, "sliding": 1, "session": 0},
    )


def test_tunnel__burst_of_old_events_after_the_watermark_moved_on() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch([Tx(f"bg{i}", 1, 1000, at(t)) for i, t in enumerate(
        ("14:00:30", "14:05:30", "14:10:30", "14:15:30", "14:20:00"))]))  # watermark 14:19:55
    burst = [Tx(f"t{i:02d}", 42, 10_000 + i, at("14:10") + 2 * SEC * i) for i in range(30)]
    out = ps.apply(batch(burst, first_offset=5))  # 14:10:00 ... 14:10:58, all at once
    state = (fixed_rows(ps.tumbling, 42), fixed_rows(ps.hopping, 42),
             sliding_rows(ps.sliding, 42), session_rows(ps.sessions, 42), ps.late_counts())
    later = ps.apply([(35, Tx("bg5", 1, 1000, at("14:30")))])  # watermark 14:29:55
    assert (out, state, [r for r in later.window_results() if r.customer_id == 42],
            [s for s in later.sessions if s.customer_id == 42]) == (
        Outputs(late=[LateEvent(offset, tx, LATE_FIXED_AND_SLIDING, at("14:19:55"))
                      for offset, tx in batch(burst, first_offset=5)]),
        (
            [],  # their tumbling window [14:10, 14:15) had closed: untouched
            [(at("14:10"), at("14:20"), 30, 300_435, 10_000, 10_029, False, False)],
            [],
            [(at("14:10"), at("14:10:58"), 30, 300_435, 10_000, 10_029, False)],
            {"tumbling": 30, "hopping": 30, "sliding": 30, "session": 0},
        ),
        [_wr("hopping", 42, "14:10", "14:20", 30, 300_435, 10_000, 10_029)],
        [SessionResult(42, at("14:10"), at("14:10:58"), 30, 300_435, 10_000, 10_029)],
    )


def test_tunnel__never_changes_closed_windows_of_the_same_customer() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling",))
    ps.apply(batch([Tx("a", 42, 100, at("14:10:30")), Tx("b", 1, 1, at("14:20"))]))
    burst = [Tx(f"t{i:02d}", 42, 600_000, at("14:10") + SEC * i) for i in range(30)]
    out = ps.apply(batch(burst, first_offset=2))
    assert (len(out.late), out.alerts, out.window_results(), fixed_rows(ps.tumbling, 42),
            ps.late_counts()) == (
        30, [], [], [(at("14:10"), at("14:15"), 1, 100, 100, 100, True, False)],
        {"tumbling": 30})


def test_idle__windows_close_at_wall_clock_pace_after_the_timeout() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling", "session"))
    first = ps.apply(batch([Tx("a", 1, 100, at("14:01")), Tx("b", 1, 200, at("14:03"))]),
                     wall_ms=WALL)  # watermark 14:02:55
    steps = []
    for wall in (WALL + IDLE, WALL + IDLE + 2 * MIN + 4_999, WALL + IDLE + 2 * MIN + 5 * SEC,
                 WALL + IDLE + 15 * MIN + 5 * SEC - 1, WALL + IDLE + 15 * MIN + 5 * SEC):
        steps.append((ps.advance(wall), ps.watermark))
    assert (first, steps) == (Outputs(), [
        (Outputs(), at("14:02:55")),
        (Outputs(), at("14:04:59.999")),
        (Outputs(results=[_wr("tumbling", 1, "14:00", "14:05", 2, 300, 100, 200)]),
         at("14:05")),
        (Outputs(), at("14:17:59.999")),
        (Outputs(sessions=[SessionResult(1, at("14:01"), at("14:03"), 2, 300, 100, 200)]),
         at("14:18")),
    ])


def test_idle__not_before_the_timeout_and_not_to_the_wall_clock() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling",))
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]), wall_ms=WALL)
    values = []
    for wall in (WALL + 1, WALL + IDLE - 1, WALL + IDLE, WALL + IDLE + 1):
        ps.advance(wall)
        values.append(ps.watermark)
    assert values == [at("14:00:55"), at("14:00:55"), at("14:00:55"), at("14:00:55") + 1]


def test_idle__without_wall_clock_nothing_moves() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling",))
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]))  # no wall time given
    out = ps.advance(WALL + 10 * IDLE)
    assert (out, ps.watermark) == (Outputs(), at("14:00:55"))


def test_idle__new_input_after_idling_is_late_and_never_moves_the_watermark_back() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling", "session"))
    ps.apply(batch([Tx("a", 1, 100, at("14:01")), Tx("b", 1, 200, at("14:03"))]),
             wall_ms=WALL)
    ps.advance(WALL + IDLE + 15 * MIN + 5 * SEC)  # watermark 14:18:00: all closed
    late = Tx("c", 1, 300, at("14:02:59"))        # 14:02:59 + gap <= 14:18:00
    fresh = Tx("d", 1, 400, at("14:20"))
    wall = WALL + 20 * MIN
    out = ps.apply([(2, late), (3, fresh)], wall_ms=wall)
    after_input = ps.watermark
    ps.advance(wall + IDLE + SEC)
    assert (out, after_input, ps.watermark, fixed_rows(ps.tumbling, 1)) == (
        Outputs(late=[LateEvent(2, late, ("tumbling", "session"), at("14:18"))]),
        at("14:19:55"),
        at("14:19:56"),  # idles on from where it stood at the last input
        [(at("14:00"), at("14:05"), 2, 300, 100, 200, True, False),
         (at("14:20"), at("14:25"), 1, 400, 400, 400, False, False)],
    )


def test_idle__every_kind_closes_and_expires_after_a_long_quiet_time() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]), wall_ms=WALL)
    out = ps.advance(WALL + IDLE + 1 * 3_600_000)  # watermark 15:00:55
    assert (out, ps.watermark, fixed_rows(ps.tumbling, 1), fixed_rows(ps.hopping, 1),
            sliding_rows(ps.sliding, 1), session_rows(ps.sessions, 1)) == (
        Outputs(
            results=[
                _wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100),
                _wr("hopping", 1, "13:52", "14:02", 1, 100, 100, 100),
                _wr("hopping", 1, "13:54", "14:04", 1, 100, 100, 100),
                _wr("hopping", 1, "13:56", "14:06", 1, 100, 100, 100),
                _wr("hopping", 1, "13:58", "14:08", 1, 100, 100, 100),
                _wr("hopping", 1, "14:00", "14:10", 1, 100, 100, 100),
                _wr("sliding", 1, "13:51", "14:01", 1, 100, 100, 100),
            ],
            sessions=[SessionResult(1, at("14:01"), at("14:01"), 1, 100, 100, 100)],
        ),
        at("15:00:55"), [], [], [], [],
    )


def test_idle__each_kind_keeps_its_own_watermark_in_step() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]), wall_ms=WALL)
    ps.advance(WALL + IDLE + 7 * SEC)
    assert {kind: state.watermark.to_list() for kind, state in ps.kinds.items()} == {
        kind: [at("14:01"), at("14:01:02")] for kind in ALL}
