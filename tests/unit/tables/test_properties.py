"""Property tests of the windowing core: arrival order, batching and crashes do not matter."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tables.outputs import Outputs
from tables.partition import PartitionState
from tables.windows import WindowConfig
from tests.unit.tables.core_helpers import CONFIG, MIN, Store, Tx, at, collect, restored, state_of

T = TypeVar("T")
LATENESS = CONFIG.allowed_lateness_ms
START = at("14:00")
#: Far enough on to close every window and session and expire them all.
FAR_WALL = 10**13
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Times that sit exactly on window boundaries and gap edges, plus arbitrary half seconds.
_TIMES = st.one_of(
    st.integers(0, 2 * 60 * 60 * 2).map(lambda k: START + 500 * k),
    st.integers(0, 24).map(lambda k: START + 5 * MIN * k),
    st.integers(0, 24).map(lambda k: START + 5 * MIN * k - 1),
    st.integers(0, 8).map(lambda k: START + 15 * MIN * k),
)


@dataclass(frozen=True)
class Event:
    tx: Tx
    delay: int


@st.composite
def _events(draw: st.DrawFn) -> list[Event]:
    rows = draw(st.lists(st.tuples(
        st.integers(1, 3), _TIMES, st.integers(1, 300_000), st.integers(0, LATENESS)),
        min_size=1, max_size=25))
    return [Event(Tx(f"tx{i}", customer, cents, t), delay)
            for i, (customer, t, cents, delay) in enumerate(rows)]


def _sorted_order(events: list[Event]) -> list[Tx]:
    return [e.tx for e in sorted(events, key=lambda e: (e.tx.event_time_ms, e.tx.tx_id))]


def _arrival_order(events: list[Event]) -> list[Tx]:
    """Each event delayed by at most the allowed lateness: never late when it arrives."""
    return [e.tx for e in sorted(events, key=lambda e: (e.tx.event_time_ms + e.delay,
                                                        int(e.tx.tx_id[2:])))]


def _cut(records: list[T], cuts: list[int]) -> list[list[T]]:
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    return [records[a:b] for a, b in itertools.pairwise(bounds)]


def _run(txs: Sequence[Tx | None], cuts: list[int],
         config: WindowConfig = CONFIG) -> tuple[PartitionState, Outputs]:
    ps = PartitionState(0, config)
    outs = [ps.apply(part, wall_ms=0) for part in _cut(list(enumerate(txs)), cuts)]
    outs.append(ps.advance(FAR_WALL))
    return ps, collect(outs)


def _apply_until_crash(parts: list[list[tuple[int, Tx | None]]], flushed: int,
                       crashed: int) -> tuple[PartitionState, Store, list[Outputs]]:
    """Apply the first ``crashed`` batches, flushing after each of the first ``flushed``."""
    ps = PartitionState(0, CONFIG)
    store = Store()
    sent = []
    for number, part in enumerate(parts[:crashed], 1):
        sent.append(ps.apply(part, wall_ms=0))
        if number <= flushed:
            store.flush(ps)
    return ps, store, sent


def _restart(store: Store, again: list[tuple[int, Tx | None]], cuts: list[int],
             sent: list[Outputs]) -> tuple[PartitionState, Outputs]:
    """Restore from ``store``, apply the re-delivered records ``again`` in batches, let the
    wall clock close everything; the restored state and every output ``sent`` since the
    start."""
    back = restored(store)
    for part in _cut(again, cuts):
        sent.append(back.apply(part, wall_ms=0))
    for state in back.tables.values():
        state.mark_input(0)
    sent.append(back.advance(FAR_WALL))
    return back, collect(sent)


def _by_id(out: Outputs) -> dict[str, object]:
    """Every output by its id (a conflicting duplicate by its offset); a repeat must be
    identical to the first."""
    seen: dict[str, object] = {}
    for key, record in ([(r.result_id, r) for r in out.window_results()]
                        + [(f"s:{s.session_id}", s) for s in out.sessions]
                        + [(f"a:{a.alert_id}", a) for a in out.alerts]
                        + [(f"dlq:{c.offset}", c) for c in out.conflicts]):
        assert seen.setdefault(key, record) == record, key  # a repeat is identical
    return seen


def _key(record: object) -> tuple[object, ...]:
    return (getattr(record, "kind", ""), record.customer_id, record.start_ms,  # type: ignore[attr-defined]
            record.end_ms)  # type: ignore[attr-defined]


def _final(out: Outputs) -> tuple[list[object], list[object], set[str]]:
    return (sorted(out.window_results(), key=_key), sorted(out.sessions, key=_key),
            {a.alert_id for a in out.alerts})


def _no_repeats(out: Outputs) -> bool:
    # Ids are unique per output topic (an alert and a session may share "customer:start").
    ids = ([r.result_id for r in out.window_results()] + [f"s:{s.session_id}" for s in out.sessions]
           + [f"a:{a.alert_id}" for a in out.alerts])
    return len(ids) == len(set(ids))


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 30), max_size=4),
       sorted_cuts=st.lists(st.integers(0, 30), max_size=4))
def test_any_arrival_within_lateness_gives_the_windows_of_sorted_input(
        events: list[Event], cuts: list[int], sorted_cuts: list[int]) -> None:
    _, shuffled = _run(_arrival_order(events), cuts)
    _, ordered = _run(_sorted_order(events), sorted_cuts)
    assert (_final(shuffled), shuffled.late, _no_repeats(shuffled), _no_repeats(ordered)) == (
        _final(ordered), [], True, True)


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 30), max_size=4))
def test_totals_counts_and_window_numbers_add_up(events: list[Event], cuts: list[int]) -> None:
    ps, out = _run(_arrival_order(events), cuts)
    by_kind: dict[str, Counter[tuple[int, str]]] = {}
    for r in out.window_results():
        counter = by_kind.setdefault(r.kind, Counter())
        counter[(r.customer_id, "count")] += r.count
        counter[(r.customer_id, "total")] += r.total
    sessions: Counter[tuple[int, str]] = Counter()
    for s in out.sessions:
        sessions[(s.customer_id, "count")] += s.count
        sessions[(s.customer_id, "total")] += s.total
    inputs: Counter[tuple[int, str]] = Counter()
    for e in events:
        inputs[(e.tx.customer_id, "count")] += 1
        inputs[(e.tx.customer_id, "total")] += e.tx.amount_cents
    per_step = CONFIG.hopping_size_ms // CONFIG.hopping_step_ms
    distinct_times = {(e.tx.customer_id, e.tx.event_time_ms) for e in events}
    assert (by_kind["tumbling"], sessions,
            Counter({k: v * per_step for k, v in inputs.items()}), len(by_kind["sliding"]) > 0,
            sorted((r.customer_id, r.end_ms) for r in out.window_results() if r.kind == "sliding"),
            ps.late_counts(), ps.counter("events"),
            [fixed for kind in ("tumbling", "hopping")
             for c in (1, 2, 3) for fixed in getattr(ps, kind).windows_of(c)]) == (
        inputs, inputs, by_kind["hopping"], True, sorted(distinct_times),
        {"tumbling": 0, "hopping": 0, "sliding": 0, "session": 0}, len(events), [])


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 30), max_size=4))
def test_alert_once_per_customer_window_above_threshold(events: list[Event],
                                                        cuts: list[int]) -> None:
    _, out = _run(_arrival_order(events), cuts)
    above = {f"{r.customer_id}:{r.start_ms}" for r in out.window_results()
             if r.kind == "tumbling" and r.total > CONFIG.alert_threshold_cents}
    assert sorted(a.alert_id for a in out.alerts) == sorted(above)


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 30), min_size=1, max_size=4),
       data=st.data())
def test_crash_restore_and_redelivery_give_the_uninterrupted_outputs(
        events: list[Event], cuts: list[int], data: st.DataObject) -> None:
    txs = _arrival_order(events)
    records = list(enumerate(txs))
    reference, expected = _run(txs, cuts)

    parts = _cut(records, cuts)
    flushed = data.draw(st.integers(0, len(parts)), label="batches flushed")
    crashed = data.draw(st.integers(flushed, len(parts)), label="batches applied")
    ps, store, sent = _apply_until_crash(parts, flushed, crashed)
    if crashed > flushed:
        # The flush after the crash point died part way: some customer records, no
        # partition record.
        records_b = {kind: [(k, v) for k, v in state.dump_dirty() if k.isdigit()]
                     for kind, state in ps.kinds.items()}
        keep = data.draw(st.sets(st.sampled_from([(kind, key) for kind, pairs in
                                                 records_b.items() for key, _ in pairs]))
                         if any(records_b.values()) else st.just(set()), label="kept")
        store.write({kind: [(k, v) for k, v in pairs if (kind, k) in keep]
                     for kind, pairs in records_b.items()})
    applied = sum(len(part) for part in parts[:flushed])
    since = data.draw(st.integers(0, applied), label="re-delivered from")
    more_cuts = data.draw(st.lists(st.integers(0, 30), max_size=3), label="new cuts")
    back, everything = _restart(store, records[since:], more_cuts, sent)
    assert (_by_id(everything), everything.late, state_of(back)) == (
        _by_id(expected), [], state_of(reference))


@SETTINGS
@given(events=_events(), delays=st.lists(st.integers(0, 20 * MIN), min_size=25, max_size=25),
       cuts=st.lists(st.integers(0, 30), max_size=5))
def test_batch_boundaries_never_matter_even_with_late_events(
        events: list[Event], delays: list[int], cuts: list[int]) -> None:
    # Arbitrary delays (up to 20 min): many events are late. Sessions are left out: see
    # test_core_sessions.py::test_session__result_does_not_depend_on_batch_boundaries.
    txs = [e.tx for _, e in sorted(
        enumerate(events), key=lambda pair: (pair[1].tx.event_time_ms + delays[pair[0]],
                                             pair[0]))]
    kinds = ("tumbling", "hopping", "sliding")
    outs = []
    for parts in ([list(enumerate(txs))], _cut(list(enumerate(txs)), cuts)):
        ps = PartitionState(0, CONFIG, kinds=kinds)
        out = collect([ps.apply(part, wall_ms=0) for part in parts] + [ps.advance(FAR_WALL)])
        outs.append((_final(out), out.late, ps.late_counts()))
    one_batch, many_batches = outs
    # Late events never reach a closed window: tumbling totals are exactly the on-time input.
    late = {late.offset for late in one_batch[1] if "tumbling" in late.kinds}
    on_time: Counter[int] = Counter()
    for offset, tx in enumerate(txs):
        if offset not in late:
            on_time[tx.customer_id] += tx.amount_cents
    totals: Counter[int] = Counter()
    for r in one_batch[0][0]:
        if r.kind == "tumbling":  # type: ignore[attr-defined]
            totals[r.customer_id] += r.total  # type: ignore[attr-defined]
    assert (many_batches, totals) == (one_batch, on_time)
