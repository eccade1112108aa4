"""Tumbling and hopping windows through PartitionState: closing, lateness, alerts, retention."""

from __future__ import annotations

import dataclasses

import pytest

from tables.fixed import FixedWindowState
from tables.outputs import Alert, LateEvent, Outputs, WindowResult
from tables.partition import PartitionState
from tables.windows import WindowKind
from tests.unit.tables.core_helpers import CONFIG, Tx, at, batch, collect, fixed_rows

TUMBLING = ("tumbling",)
FIXED = ("tumbling", "hopping")


def _tumbling() -> PartitionState:
    return PartitionState(0, CONFIG, kinds=TUMBLING)


def _one_by_one(ps: PartitionState, txs: list[Tx], first_offset: int = 0) -> list[Outputs]:
    return [ps.apply([(offset, tx)]) for offset, tx in batch(txs, first_offset)]


def _wr(kind: str, customer: int, start: str, end: str, count: int, total: int, lo: int,
        hi: int) -> WindowResult:
    return WindowResult(kind, customer, at(start), at(end), count, total, lo, hi)


# -- tumbling ---------------------------------------------------------------------------


def test_tumbling__boundaries_and_out_of_order_within_lateness() -> None:
    ps = _tumbling()
    txs = [
        Tx("a", 7, 10000, at("14:01")),
        Tx("b", 7, 2500, at("14:04:59.999")),   # last ms of [14:00, 14:05)
        Tx("c", 7, 4000, at("14:05")),          # first ms of [14:05, 14:10)
        Tx("d", 7, 1500, at("14:04:57")),       # 3 s out of order, within lateness
        Tx("e", 7, 700, at("14:10:04")),        # watermark 14:09:59: closes [14:00, 14:05)
        Tx("f", 7, 300, at("14:09:59.500")),    # still >= watermark: accepted
        Tx("g", 7, 50, at("14:10:05")),         # watermark 14:10:00: closes [14:05, 14:10)
    ]
    out = collect(_one_by_one(ps, txs))
    assert (out, fixed_rows(ps.tumbling, 7)) == (
        Outputs(results=[
            _wr("tumbling", 7, "14:00", "14:05", 3, 14000, 1500, 10000),
            _wr("tumbling", 7, "14:05", "14:10", 2, 4300, 300, 4000),
        ]),
        [
            (at("14:00"), at("14:05"), 3, 14000, 1500, 10000, True, False),
            (at("14:05"), at("14:10"), 2, 4300, 300, 4000, True, False),
            (at("14:10"), at("14:15"), 2, 750, 50, 700, False, False),
        ],
    )


def test_tumbling__one_batch_gives_the_same_windows_as_one_by_one() -> None:
    txs = [
        Tx("a", 7, 10000, at("14:01")),
        Tx("b", 7, 2500, at("14:04:59.999")),
        Tx("c", 7, 4000, at("14:05")),
        Tx("d", 7, 1500, at("14:04:57")),
        Tx("e", 7, 700, at("14:10:04")),
        Tx("f", 7, 300, at("14:09:59.500")),
        Tx("g", 7, 50, at("14:10:05")),
    ]
    ps = _tumbling()
    out = ps.apply(batch(txs))
    assert out == Outputs(results=[
        _wr("tumbling", 7, "14:00", "14:05", 3, 14000, 1500, 10000),
        _wr("tumbling", 7, "14:05", "14:10", 2, 4300, 300, 4000),
    ])


def test_tumbling__closes_exactly_when_the_watermark_reaches_the_end() -> None:
    ps = _tumbling()
    outs = _one_by_one(ps, [
        Tx("a", 1, 100, at("14:01")),
        Tx("b", 1, 200, at("14:05:04.999")),  # watermark 14:04:59.999: still open
        Tx("c", 1, 300, at("14:05:05")),      # watermark 14:05:00 == end: closed
    ])
    assert (outs, ps.watermark) == (
        [Outputs(), Outputs(),
         Outputs(results=[_wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100)])],
        at("14:05"))


def test_tumbling__late_beyond_lateness_goes_to_late_and_never_changes_the_window() -> None:
    ps = _tumbling()
    first = _one_by_one(ps, [Tx("a", 1, 100, at("14:01")), Tx("b", 1, 200, at("14:05:05"))])
    late_a = Tx("c", 1, 999, at("14:04:59.999"))  # its window closed at 14:05:00
    late_b = Tx("d", 2, 555, at("14:00"))         # a customer never seen, window closed
    on_time = Tx("e", 1, 1, at("14:05:00"))       # == watermark: on time
    out = ps.apply([(2, late_a), (3, late_b), (4, on_time)])
    assert (first[1].window_results(), out, fixed_rows(ps.tumbling, 1), fixed_rows(ps.tumbling, 2),
            ps.late_counts(), ps.counter("events")) == (
        [_wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100)],
        Outputs(late=[LateEvent(2, late_a, TUMBLING, at("14:05")),
                      LateEvent(3, late_b, TUMBLING, at("14:05"))]),
        [(at("14:00"), at("14:05"), 1, 100, 100, 100, True, False),
         (at("14:05"), at("14:10"), 2, 201, 1, 200, False, False)],
        [],
        {"tumbling": 2},
        5,
    )


def test_tumbling__each_window_result_exactly_once_over_many_batches() -> None:
    ps = _tumbling()
    txs = [
        Tx("a", 1, 100, at("14:01")),
        Tx("b", 2, 200, at("14:02")),
        Tx("c", 1, 300, at("14:06")),
        Tx("d", 1, 400, at("14:06:30")),
        Tx("e", 2, 500, at("14:11")),
        Tx("f", 1, 600, at("14:03")),    # late
        Tx("g", 2, 700, at("14:16")),
        Tx("h", 2, 800, at("14:16")),
        Tx("i", 1, 900, at("14:40")),
    ]
    outs = _one_by_one(ps, txs)
    # Move on further: nothing closes twice.
    outs.append(ps.apply([(9, Tx("j", 3, 1, at("15:00")))]))
    outs.append(ps.advance(None))
    out = collect(outs)
    assert (out.window_results(), [late.offset for late in out.late]) == ([
        _wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100),
        _wr("tumbling", 2, "14:00", "14:05", 1, 200, 200, 200),
        _wr("tumbling", 1, "14:05", "14:10", 2, 700, 300, 400),
        _wr("tumbling", 2, "14:10", "14:15", 1, 500, 500, 500),
        _wr("tumbling", 2, "14:15", "14:20", 2, 1500, 700, 800),
        _wr("tumbling", 1, "14:40", "14:45", 1, 900, 900, 900),
    ], [5])


def test_tumbling__windows_of_unknown_customer() -> None:
    assert _tumbling().tumbling.windows_of(404) == []


def test_tumbling__results_ids_are_kind_customer_start() -> None:
    ps = _tumbling()
    out = ps.apply(batch([Tx("a", 12, 100, at("14:01")), Tx("b", 13, 100, at("14:20"))]))
    assert [r.result_id for r in out.window_results()] == [f"tumbling:12:{at('14:00')}"]


# -- alerts -----------------------------------------------------------------------------


def test_alert__once_when_the_total_goes_strictly_above_the_threshold() -> None:
    ps = _tumbling()
    outs = _one_by_one(ps, [
        Tx("a", 1, 200_000, at("14:00:10")),
        Tx("b", 1, 300_000, at("14:01")),   # total 5000.00 == threshold: no alert
        Tx("c", 1, 1, at("14:02")),         # 5000.01 > threshold: alert at once
        Tx("d", 1, 100_000, at("14:03")),   # already alerted
        Tx("e", 1, 500_000, at("14:06")),   # next window: exactly the threshold
        Tx("f", 1, 1, at("14:20")),
    ])
    assert outs == [
        Outputs(),
        Outputs(),
        Outputs(alerts=[Alert(1, at("14:00"), at("14:05"), 3, 500_001, 500_000, "c",
                              at("14:02"))]),
        Outputs(),
        Outputs(results=[_wr("tumbling", 1, "14:00", "14:05", 4, 600_001, 1, 300_000)]),
        Outputs(results=[_wr("tumbling", 1, "14:05", "14:10", 1, 500_000, 500_000, 500_000)]),
    ]


def test_alert__flags_in_windows() -> None:
    ps = _tumbling()
    ps.apply(batch([Tx("a", 1, 500_001, at("14:00")), Tx("b", 1, 500_000, at("14:05"))]))
    assert fixed_rows(ps.tumbling, 1) == [
        (at("14:00"), at("14:05"), 1, 500_001, 500_001, 500_001, False, True),
        (at("14:05"), at("14:10"), 1, 500_000, 500_000, 500_000, False, False),
    ]


def test_alert__one_per_customer_and_window_and_only_from_tumbling() -> None:
    ps = PartitionState(0, CONFIG)  # every kind: hopping/sliding/session never alert
    out = ps.apply(batch([
        Tx("a", 1, 600_000, at("14:00")),
        Tx("b", 2, 250_000, at("14:01")),
        Tx("c", 2, 250_001, at("14:02")),
        Tx("d", 1, 600_000, at("14:03")),
        Tx("e", 1, 600_000, at("14:05")),
    ]))
    assert (out.alerts, [a.alert_id for a in out.alerts]) == ([
        Alert(1, at("14:00"), at("14:05"), 1, 600_000, 500_000, "a", at("14:00")),
        Alert(2, at("14:00"), at("14:05"), 2, 500_001, 500_000, "c", at("14:02")),
        Alert(1, at("14:05"), at("14:10"), 1, 600_000, 500_000, "e", at("14:05")),
    ], [f"1:{at('14:00')}", f"2:{at('14:00')}", f"1:{at('14:05')}"])


def test_alert__never_for_a_window_that_stays_at_or_below() -> None:
    ps = _tumbling()
    outs = _one_by_one(ps, [
        Tx("a", 1, 499_999, at("14:00")),
        Tx("b", 1, 1, at("14:04")),
        Tx("c", 1, 10, at("14:30")),
    ])
    out = collect(outs)
    assert (out.alerts, out.window_results()) == (
        [], [_wr("tumbling", 1, "14:00", "14:05", 2, 500_000, 1, 499_999)])


def test_alert__a_late_event_never_alerts_a_closed_window() -> None:
    ps = _tumbling()
    ps.apply(batch([Tx("a", 1, 400_000, at("14:00")), Tx("b", 1, 1, at("14:06"))]))
    late = Tx("c", 1, 400_000, at("14:04"))
    out = ps.apply([(2, late)])
    assert out == Outputs(late=[LateEvent(2, late, TUMBLING, at("14:05:55"))])


# -- hopping ----------------------------------------------------------------------------


def test_hopping__each_event_in_size_over_step_windows() -> None:
    ps = PartitionState(0, CONFIG, kinds=FIXED)
    first = ps.apply(batch([
        Tx("a", 3, 1000, at("14:03")),
        Tx("b", 3, 2000, at("14:04")),
        Tx("c", 3, 4000, at("14:06")),   # exactly a hopping start: not in [13:56, 14:06)
    ]))
    second = ps.apply([(3, Tx("z", 9, 1, at("14:30")))])
    assert [first, second] == [
        Outputs(results=[  # watermark 14:05:55
            _wr("tumbling", 3, "14:00", "14:05", 2, 3000, 1000, 2000),
            _wr("hopping", 3, "13:54", "14:04", 1, 1000, 1000, 1000),
        ]),
        Outputs(results=[  # watermark 14:29:55
            _wr("tumbling", 3, "14:05", "14:10", 1, 4000, 4000, 4000),
            _wr("hopping", 3, "13:56", "14:06", 2, 3000, 1000, 2000),
            _wr("hopping", 3, "13:58", "14:08", 3, 7000, 1000, 4000),
            _wr("hopping", 3, "14:00", "14:10", 3, 7000, 1000, 4000),
            _wr("hopping", 3, "14:02", "14:12", 3, 7000, 1000, 4000),
            _wr("hopping", 3, "14:04", "14:14", 2, 6000, 2000, 4000),
            _wr("hopping", 3, "14:06", "14:16", 1, 4000, 4000, 4000),
        ]),
    ]


def test_hopping__windows_of_customer() -> None:
    ps = PartitionState(0, CONFIG, kinds=FIXED)
    ps.apply(batch([Tx("a", 3, 1000, at("14:03")), Tx("b", 3, 2000, at("14:04:30"))]))
    assert fixed_rows(ps.hopping, 3) == [  # watermark 14:04:25
        (at("13:54"), at("14:04"), 1, 1000, 1000, 1000, True, False),
        (at("13:56"), at("14:06"), 2, 3000, 1000, 2000, False, False),
        (at("13:58"), at("14:08"), 2, 3000, 1000, 2000, False, False),
        (at("14:00"), at("14:10"), 2, 3000, 1000, 2000, False, False),
        (at("14:02"), at("14:12"), 2, 3000, 1000, 2000, False, False),
        (at("14:04"), at("14:14"), 1, 2000, 2000, 2000, False, False),
    ]


def test_hopping__late_for_closed_windows_counted_in_open_ones() -> None:
    ps = PartitionState(0, CONFIG, kinds=FIXED)
    ps.apply([(0, Tx("a", 4, 100, at("14:08")))])  # watermark 14:07:55
    late = Tx("b", 4, 200, at("14:05"))  # [13:56, 14:06) has closed; four windows open
    out = ps.apply([(1, late)])
    assert (out, fixed_rows(ps.hopping, 4), fixed_rows(ps.tumbling, 4), ps.late_counts()) == (
        Outputs(late=[LateEvent(1, late, ("hopping",), at("14:07:55"))]),
        [
            (at("13:58"), at("14:08"), 1, 200, 200, 200, False, False),
            (at("14:00"), at("14:10"), 2, 300, 100, 200, False, False),
            (at("14:02"), at("14:12"), 2, 300, 100, 200, False, False),
            (at("14:04"), at("14:14"), 2, 300, 100, 200, False, False),
            (at("14:06"), at("14:16"), 1, 100, 100, 100, False, False),
            (at("14:08"), at("14:18"), 1, 100, 100, 100, False, False),
        ],
        [(at("14:05"), at("14:10"), 2, 300, 100, 200, False, False)],
        {"tumbling": 0, "hopping": 1},
    )


def test_hopping__never_alerts() -> None:
    state = FixedWindowState(WindowKind.HOPPING, CONFIG)
    out = Outputs()
    state.apply_batch([(0, Tx("a", 1, 10**9, at("14:00")))], out)
    assert (state.threshold, out) == (None, Outputs())


@pytest.mark.parametrize("kind", [WindowKind.SLIDING, WindowKind.SESSION])
def test_fixed_window_state__other_kinds_rejected(kind: WindowKind) -> None:
    with pytest.raises(ValueError) as info:
        FixedWindowState(kind, CONFIG)
    assert str(info.value) == f"fixed windows are tumbling or hopping, not {kind.value}"


# -- retention --------------------------------------------------------------------------


def test_retention__closed_windows_stay_until_end_plus_retention() -> None:
    ps = _tumbling()  # retention 30 min
    seen = []
    outs = []
    for offset, tx in batch([
        Tx("a", 1, 100, at("14:01")),
        Tx("b", 2, 1, at("14:10")),           # watermark 14:09:55: [14:00, 14:05) closed
        Tx("c", 2, 1, at("14:35:04.999")),    # watermark 14:34:59.999: still kept
        Tx("d", 2, 1, at("14:35:05")),        # watermark 14:35:00 == end + retention: gone
    ]):
        outs.append(ps.apply([(offset, tx)]))
        seen.append(fixed_rows(ps.tumbling, 1))
    kept = (at("14:00"), at("14:05"), 1, 100, 100, 100)
    assert (seen, collect(outs).window_results()) == (
        [[(*kept, False, False)], [(*kept, True, False)], [(*kept, True, False)], []],
        [_wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100),
         _wr("tumbling", 2, "14:10", "14:15", 1, 1, 1, 1)],
    )


def test_retention__expiry_is_written_to_the_state_record() -> None:
    ps = _tumbling()
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]))
    ps.tumbling.dump_dirty()
    ps.apply([(1, Tx("b", 2, 1, at("14:40")))])
    records = dict(ps.tumbling.dump_dirty())
    # "c": every window of the customer ending by then has closed.
    assert (records[b"1"], ps.watermark) == (
        b'{"o":0,"w":[],"c":%d}' % ps.watermark, at("14:40") - CONFIG.allowed_lateness_ms)


def test_retention__zero_closes_and_removes_at_once() -> None:
    ps = PartitionState(0, dataclasses.replace(CONFIG, retention_ms=0), kinds=TUMBLING)
    out = ps.apply(batch([Tx("a", 1, 100, at("14:01")), Tx("b", 2, 1, at("14:06"))]))
    assert (out.window_results(), fixed_rows(ps.tumbling, 1), fixed_rows(ps.tumbling, 2)) == (
        [_wr("tumbling", 1, "14:00", "14:05", 1, 100, 100, 100)],
        [],
        [(at("14:05"), at("14:10"), 1, 1, 1, 1, False, False)],
    )


def test_retention__hopping() -> None:
    ps = PartitionState(0, CONFIG, kinds=FIXED)
    ps.apply(batch([Tx("a", 1, 100, at("14:01"))]))
    # Windows [13:52, 14:02) ... [14:00, 14:10); the last leaves at 14:10 + 30 min.
    ps.apply([(1, Tx("b", 2, 1, at("14:40:04.999")))])   # watermark 14:39:59.999
    kept = fixed_rows(ps.hopping, 1)
    ps.apply([(2, Tx("c", 2, 1, at("14:40:05")))])       # watermark 14:40:00
    assert (kept, fixed_rows(ps.hopping, 1)) == (
        [(at("14:00"), at("14:10"), 1, 100, 100, 100, True, False)],
        [],
    )


# -- counters ---------------------------------------------------------------------------


def test_counters__events_and_dead_letters_once_per_offset() -> None:
    ps = _tumbling()
    txs = [Tx("a", 1, 100, at("14:01")), Tx("b", 1, 100, at("14:02"))]
    ps.apply([(0, txs[0]), (1, None), (2, txs[1])])  # offset 1 is a dead letter
    ps.apply([(0, txs[0]), (1, None), (2, txs[1])])  # delivered again
    ps.apply([(3, None), (4, Tx("c", 1, 100, at("14:03")))])
    assert (ps.counter("events"), ps.counter("dead_letters"), ps.counter("nothing"),
            fixed_rows(ps.tumbling, 1)) == (
        3, 2, 0, [(at("14:00"), at("14:05"), 3, 300, 100, 100, False, False)])


# -- partition basics -----------------------------------------------------------------


def test_partition__tumbling_kind_is_required() -> None:
    with pytest.raises(ValueError) as info:
        PartitionState(0, CONFIG, kinds=("hopping", "sliding"))
    assert str(info.value) == (
        "the tumbling kind is required: it carries the alert rule and counters")


def test_partition__kinds_in_table_order() -> None:
    assert list(PartitionState(3, CONFIG).kinds) == ["tumbling", "hopping", "sliding", "session"]


def test_partition__windows_around_the_epoch() -> None:
    ps = _tumbling()
    out = ps.apply(batch([
        Tx("a", 1, 100, -1),                   # [-5 min, 0)
        Tx("b", 1, 200, 0),                    # [0, 5 min): the epoch starts a window
        Tx("c", 1, 300, 5 * 60_000 + 5_000),   # watermark 5 min: both close
    ]))
    assert (out.window_results(), ps.watermark, ps.max_event_ms) == (
        [WindowResult("tumbling", 1, -300_000, 0, 1, 100, 100, 100),
         WindowResult("tumbling", 1, 0, 300_000, 1, 200, 200, 200)],
        300_000, 305_000)


def test_outputs__bool_and_extend() -> None:
    result = WindowResult("tumbling", 1, 0, 1, 1, 1, 1, 1)
    empty, some = Outputs(), Outputs(results=[result])
    empty.extend(some)
    empty.extend(Outputs())
    assert (bool(Outputs()), bool(some), empty) == (False, True, Outputs(results=[result]))
