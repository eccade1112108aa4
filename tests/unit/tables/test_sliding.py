"""Sliding windows ``(t - size, t]`` through PartitionState: one result per distinct time."""

from __future__ import annotations

from tables.outputs import LateEvent, Outputs, WindowResult
from tables.partition import PartitionState
from tests.unit.tables.core_helpers import CONFIG, Tx, at, batch, collect, sliding_rows

KINDS = ("tumbling", "sliding")


def _ps() -> PartitionState:
    return PartitionState(0, CONFIG, kinds=KINDS)


def _sliding(out: Outputs) -> list[WindowResult]:
    return [r for r in out.window_results() if r.kind == "sliding"]


def _wr(customer: int, end: str, count: int, total: int, lo: int, hi: int) -> WindowResult:
    return WindowResult("sliding", customer, at(end) - CONFIG.sliding_ms, at(end), count, total,
                        lo, hi)


def test_sliding__aggregate_over_the_size_before_each_distinct_event_time() -> None:
    ps = _ps()
    first = ps.apply(batch([
        Tx("a", 5, 100, at("14:00")),
        Tx("b", 5, 200, at("14:05")),
        Tx("c", 5, 400, at("14:10")),    # (14:00, 14:10]: the start is excluded
        Tx("d", 5, 800, at("14:10")),    # same time: same window
        Tx("e", 5, 1600, at("14:12:30")),
    ]))  # watermark 14:12:25
    rows = sliding_rows(ps.sliding, 5)
    second = ps.apply([(5, Tx("z", 99, 1, at("15:00")))])
    third = ps.apply([(6, Tx("y", 99, 1, at("15:30")))])  # nothing twice
    assert ([_sliding(first), _sliding(second), _sliding(third)], rows) == (
        [
            [_wr(5, "14:00", 1, 100, 100, 100),
             _wr(5, "14:05", 2, 300, 100, 200),
             _wr(5, "14:10", 3, 1400, 200, 800)],
            [_wr(5, "14:12:30", 4, 3000, 200, 1600)],
            [_wr(99, "15:00", 1, 1, 1, 1)],
        ],
        [
            (at("13:50"), at("14:00"), 1, 100, 100, 100),
            (at("13:55"), at("14:05"), 2, 300, 100, 200),
            (at("14:00"), at("14:10"), 3, 1400, 200, 800),
            (at("14:02:30"), at("14:12:30"), 4, 3000, 200, 1600),
        ],
    )


def test_sliding__result_when_the_watermark_passes_the_event_time() -> None:
    ps = _ps()
    outs = [ps.apply([(offset, tx)]) for offset, tx in batch([
        Tx("a", 1, 100, at("14:00")),
        Tx("b", 1, 200, at("14:00:05")),      # watermark 14:00:00 == t: still open
        Tx("c", 1, 300, at("14:00:05.001")),  # watermark 14:00:00.001 > t: closed
    ])]
    assert [_sliding(out) for out in outs] == [
        [], [], [_wr(1, "14:00", 1, 100, 100, 100)]]


def test_sliding__late_when_older_than_the_watermark() -> None:
    ps = _ps()
    late = Tx("b", 1, 200, at("14:02:00"))
    outs = [ps.apply([(offset, tx)]) for offset, tx in batch([
        Tx("a", 1, 100, at("14:02:05.001")),  # watermark 14:02:00.001
        late,                                 # t < watermark: late
        Tx("c", 1, 300, at("14:02:00.001")),  # t == watermark: on time
    ])]
    assert (outs, sliding_rows(ps.sliding, 1), ps.late_counts()) == (
        [Outputs(), Outputs(late=[LateEvent(1, late, ("sliding",), at("14:02:00.001"))]),
         Outputs()],
        [(at("13:52:00.001"), at("14:02:00.001"), 1, 300, 300, 300),
         (at("13:52:05.001"), at("14:02:05.001"), 2, 400, 100, 300)],
        {"tumbling": 0, "sliding": 1},
    )


def test_sliding__out_of_order_within_lateness_and_exclusive_start() -> None:
    ps = _ps()
    out = collect([
        ps.apply([(0, Tx("a", 1, 50, at("13:55")))]),
        ps.apply([(1, Tx("b", 1, 200, at("14:05")))]),     # closes 13:55's window
        ps.apply([(2, Tx("c", 1, 100, at("14:04:57")))]),  # 3 s out of order
        ps.apply([(3, Tx("z", 2, 1, at("15:00")))]),
    ])
    assert _sliding(out) == [
        _wr(1, "13:55", 1, 50, 50, 50),
        _wr(1, "14:04:57", 2, 150, 50, 100),   # (13:54:57, 14:04:57] holds 13:55
        _wr(1, "14:05", 2, 300, 100, 200),     # (13:55, 14:05] does not
    ]


def test_sliding__customers_are_separate() -> None:
    ps = _ps()
    out = ps.apply(batch([
        Tx("a", 1, 100, at("14:00")),
        Tx("b", 2, 200, at("14:01")),
        Tx("c", 1, 300, at("14:02")),
        Tx("z", 3, 1, at("14:30")),
    ]))
    assert _sliding(out) == [
        _wr(1, "14:00", 1, 100, 100, 100),
        _wr(1, "14:02", 2, 400, 100, 300),
        _wr(2, "14:01", 1, 200, 200, 200),
    ]


def test_sliding__retention_of_windows_and_events() -> None:
    ps = _ps()  # retention 30 min, size 10 min
    ps.apply([(0, Tx("a", 1, 100, at("14:00")))])
    seen = []
    for offset, t in enumerate(("14:30:05", "14:30:05.001", "14:40:04.999", "14:40:05"), 1):
        ps.apply([(offset, Tx(f"z{offset}", 2, 1, at(t)))])
        seen.append((sliding_rows(ps.sliding, 1), list(ps.sliding.customers[1].events)))
    window = (at("13:50"), at("14:00"), 1, 100, 100, 100)
    event = (at("14:00"), 100)
    assert seen == [
        ([window], [event]),   # watermark 14:30:00 == t + retention: still shown
        ([], [event]),         # watermark past t + retention: no longer shown
        ([], [event]),         # kept while a window it belongs to could be shown
        ([], []),              # watermark 14:40:00 == t + size + retention: dropped
    ]


def test_sliding__windows_of_unknown_customer() -> None:
    assert _ps().sliding.windows_of(404) == []


def test_sliding__result_id_is_kind_customer_start() -> None:
    ps = _ps()
    out = ps.apply(batch([Tx("a", 1, 100, at("14:00")), Tx("z", 2, 1, at("14:30"))]))
    assert [r.result_id for r in _sliding(out)] == [f"sliding:1:{at('13:50')}"]
