"""Session windows through PartitionState: growth, gap, merging, lateness, retention."""

from __future__ import annotations

from tables.outputs import LateEvent, Outputs, SessionResult
from tables.partition import PartitionState
from tests.unit.tables.core_helpers import CONFIG, Tx, at, batch, collect, session_rows

KINDS = ("tumbling", "session")


def _ps() -> PartitionState:
    return PartitionState(0, CONFIG, kinds=KINDS)


def _one_by_one(ps: PartitionState, txs: list[Tx], first_offset: int = 0) -> list[Outputs]:
    return [ps.apply([(offset, tx)]) for offset, tx in batch(txs, first_offset)]


def _sr(customer: int, start: str, last: str, count: int, total: int, lo: int,
        hi: int) -> SessionResult:
    return SessionResult(customer, at(start), at(last), count, total, lo, hi)


def test_session__grows_and_closes_after_the_gap_exactly_once() -> None:
    ps = _ps()
    outs = _one_by_one(ps, [
        Tx("a", 8, 100, at("14:00")),
        Tx("b", 8, 200, at("14:10")),       # within the gap: same session
        Tx("c", 8, 400, at("14:25")),       # exactly the gap after 14:10: a new session
        Tx("d", 8, 1, at("14:25:05")),      # watermark 14:25:00 == 14:10 + gap: first closes
        Tx("e", 8, 800, at("14:40:05")),    # exactly the gap after 14:25:05: a new session
        Tx("f", 9, 1, at("14:40:10")),      # watermark 14:40:05: second closes
        Tx("g", 9, 1, at("14:41")),         # nothing closes twice
    ])
    assert ([out.sessions for out in outs], session_rows(ps.sessions, 8)) == (
        [[], [], [], [_sr(8, "14:00", "14:10", 2, 300, 100, 200)], [],
         [_sr(8, "14:25", "14:25:05", 2, 401, 1, 400)], []],
        [(at("14:00"), at("14:10"), 2, 300, 100, 200, True),
         (at("14:25"), at("14:25:05"), 2, 401, 1, 400, True),
         (at("14:40:05"), at("14:40:05"), 1, 800, 800, 800, False)],
    )


def test_session__one_batch_gives_the_same_sessions() -> None:
    ps = _ps()
    out = ps.apply(batch([
        Tx("a", 8, 100, at("14:00")),
        Tx("b", 8, 200, at("14:10")),
        Tx("c", 8, 400, at("14:25")),
        Tx("e", 8, 800, at("14:40:05")),   # watermark 14:40:00: both close
    ]))
    assert out.sessions == [_sr(8, "14:00", "14:10", 2, 300, 100, 200),
                            _sr(8, "14:25", "14:25", 1, 400, 400, 400)]


def test_session__event_before_the_start_extends_it_backwards() -> None:
    ps = _ps()
    ps.apply(batch([Tx("a", 8, 100, at("14:10")), Tx("b", 8, 200, at("14:09:57"))]))
    assert session_rows(ps.sessions, 8) == [
        (at("14:09:57"), at("14:10"), 2, 300, 100, 200, False)]


def test_session__event_exactly_gap_before_the_start_does_not_merge() -> None:
    ps = _ps()
    old = Tx("b", 8, 200, at("14:00"))   # 14:00 + gap == 14:15: spans touch, do not overlap
    out = ps.apply(batch([Tx("a", 8, 100, at("14:15")), old]))
    # Its span [14:00, 14:15) is still open (watermark 14:14:55): not late for sessions.
    assert (out, session_rows(ps.sessions, 8)) == (
        Outputs(late=[LateEvent(1, old, ("tumbling",), at("14:14:55"))]),
        [(at("14:00"), at("14:00"), 1, 200, 200, 200, False),
         (at("14:15"), at("14:15"), 1, 100, 100, 100, False)],
    )


def test_session__late_within_lateness_merges_two_open_sessions() -> None:
    ps = _ps()
    outs = _one_by_one(ps, [
        Tx("a", 8, 100, at("14:00")),
        Tx("b", 8, 200, at("14:15")),      # exactly the gap: two sessions, both open
    ])
    before = session_rows(ps.sessions, 8)
    outs += _one_by_one(ps, [
        Tx("c", 8, 400, at("14:14:57")),   # 3 s out of order: bridges both sessions
        Tx("z", 9, 1, at("15:00")),
    ], first_offset=2)
    assert (before, collect(outs).sessions, collect(outs).late) == (
        [(at("14:00"), at("14:00"), 1, 100, 100, 100, False),
         (at("14:15"), at("14:15"), 1, 200, 200, 200, False)],
        [_sr(8, "14:00", "14:15", 3, 700, 100, 400)],
        [],
    )


def test_session__old_event_still_inside_an_open_span_merges_two_sessions() -> None:
    ps = _ps()
    ps.apply(batch([Tx("a", 8, 100, at("14:00")), Tx("b", 8, 200, at("14:15:03"))]))
    # watermark 14:14:58; 14:00's session is still open (closes at 14:15:00)
    bridge = Tx("c", 8, 400, at("14:10"))  # five minutes old, its span [14:10, 14:25) open
    out = ps.apply([(2, bridge)])
    assert (out, session_rows(ps.sessions, 8)) == (
        Outputs(),  # tumbling [14:10, 14:15) is still open too
        [(at("14:00"), at("14:15:03"), 3, 700, 100, 400, False)],
    )


def test_session__event_whose_span_has_closed_is_late() -> None:
    ps = _ps()
    ps.apply(batch([Tx("a", 8, 100, at("14:00")), Tx("z", 9, 1, at("14:30:05"))]))
    late = Tx("b", 8, 200, at("14:15"))          # 14:15 + gap == watermark 14:30: late
    fresh = Tx("c", 8, 300, at("14:15:00.001"))  # span still open: a new session
    out = ps.apply([(2, late), (3, fresh)])
    assert (out, session_rows(ps.sessions, 8), ps.late_counts()) == (
        Outputs(late=[LateEvent(2, late, ("tumbling", "session"), at("14:30")),
                      LateEvent(3, fresh, ("tumbling",), at("14:30"))]),
        [(at("14:00"), at("14:00"), 1, 100, 100, 100, True),
         (at("14:15:00.001"), at("14:15:00.001"), 1, 300, 300, 300, False)],
        {"tumbling": 2, "session": 1},
    )


def test_session__customers_are_separate() -> None:
    ps = _ps()
    out = ps.apply(batch([
        Tx("a", 1, 100, at("14:00")),
        Tx("b", 2, 200, at("14:01")),
        Tx("c", 1, 300, at("14:05")),
        Tx("d", 2, 400, at("14:20")),
        Tx("z", 3, 1, at("15:00")),
    ]))
    assert out.sessions == [
        _sr(1, "14:00", "14:05", 2, 400, 100, 300),
        _sr(2, "14:01", "14:01", 1, 200, 200, 200),
        _sr(2, "14:20", "14:20", 1, 400, 400, 400),
    ]


def test_session__retention_removes_closed_sessions() -> None:
    ps = _ps()  # gap 15 min, retention 30 min: [14:00, 14:10] leaves at 14:55
    ps.apply(batch([Tx("a", 8, 100, at("14:00")), Tx("b", 8, 200, at("14:10"))]))
    seen = []
    for offset, t in enumerate(("14:25:05", "14:55:04.999", "14:55:05"), 2):
        ps.apply([(offset, Tx(f"z{offset}", 9, 1, at(t)))])
        seen.append(session_rows(ps.sessions, 8))
    closed = (at("14:00"), at("14:10"), 2, 300, 100, 200, True)
    assert (seen, ps.sessions.customers[8].sessions) == ([[closed], [closed], []], [])


def test_session__ids_and_duration() -> None:
    result = _sr(8, "14:00", "14:10", 2, 300, 100, 200)
    assert (result.session_id, result.duration_ms) == (f"8:{at('14:00')}", 10 * 60_000)


def test_session__sessions_of_unknown_customer() -> None:
    assert _ps().sessions.sessions_of(404) == []


def test_session__event_inside_a_closed_sessions_gap_is_late() -> None:
    ps = _ps()
    ps.apply(batch([Tx("a", 8, 100, at("14:00")), Tx("b", 8, 200, at("14:15:05"))]))
    # watermark 14:15:00: [14:00] closed (14:00 + gap <= 14:15:00); [14:15:05] open.
    inside = Tx("c", 8, 400, at("14:10"))  # within the gap after the closed session
    out = ps.apply([(2, inside)])
    assert (out.late, session_rows(ps.sessions, 8)) == (
        [LateEvent(2, inside, ("tumbling", "session"), at("14:15"))],
        [(at("14:00"), at("14:00"), 1, 100, 100, 100, True),
         (at("14:15:05"), at("14:15:05"), 1, 200, 200, 200, False)],
    )


def test_session__result_does_not_depend_on_batch_boundaries() -> None:
    txs = [
        Tx("a", 8, 100, at("14:00")),
        Tx("b", 8, 200, at("14:15:05")),   # watermark 14:15:00: [14:00] is over
        Tx("c", 8, 400, at("14:10")),      # inside [14:00]'s gap; its own span is open
        Tx("z", 9, 1, at("15:00")),
    ]
    together = _ps()
    out_together = together.apply(batch(txs))
    apart = _ps()
    out_apart = collect([apart.apply(batch(txs[:2])), apart.apply(batch(txs[2:], 2))])
    assert out_together.sessions == out_apart.sessions
