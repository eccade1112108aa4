"""Property tests of the duplicate check: repeats anywhere change no window, and a crash at
any point (a flush cut short in either stage) gives the uninterrupted run's outputs."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from tables.dedupe import TXIDS
from tables.kindstate import META_KEY
from tables.outputs import Outputs
from tables.partition import KINDS
from tests.unit.tables.core_helpers import CONFIG, MIN, Tx, state_of
from tests.unit.tables.test_properties import (
    SETTINGS,
    Event,
    _apply_until_crash,
    _arrival_order,
    _by_id,
    _cut,
    _events,
    _final,
    _restart,
    _run,
)

ALL = ("tumbling", "hopping", "sliding", "session")
T = TypeVar("T")

#: A horizon longer than any generated stream (2 h of event time): nothing expires.
LONG = dataclasses.replace(CONFIG, duplicate_horizon_ms=24 * 3_600_000)


@st.composite
def _repeats(draw: st.DrawFn, txs: list[Tx], conflicts: bool = False) -> list[Tx | None]:
    """``txs`` with copies of some of them inserted at later positions (each copy after its
    original); with ``conflicts``, some copies carry other content, and invalid records
    (``None``) are put in between."""
    stream: list[Tx | None] = list(txs)
    for _ in range(draw(st.integers(0, 12), label="copies")):
        original = draw(st.integers(0, len(txs) - 1), label="of")
        tx = txs[original]
        after = stream.index(tx)
        position = draw(st.integers(after + 1, len(stream)), label="at")
        if conflicts and draw(st.booleans(), label="other content"):
            # Another amount, customer or (later) time: a later time can be within the
            # horizon after the original's entry expired, which applies it as new.
            tx = draw(st.sampled_from([
                dataclasses.replace(tx, amount_cents=tx.amount_cents + 1),
                dataclasses.replace(tx, customer_id=tx.customer_id % 3 + 1),
                dataclasses.replace(tx, event_time_ms=tx.event_time_ms + draw(
                    st.integers(1, 90), label="minutes later") * MIN)]), label="content")
        stream.insert(position, tx)
    if conflicts:
        for position in draw(st.lists(st.integers(0, len(stream)), max_size=3),
                             label="invalid at"):
            stream.insert(position, None)
    return stream


def _late(out: Outputs) -> list[tuple[str, tuple[str, ...], int]]:
    return [(late.tx.tx_id, late.kinds, late.watermark_ms) for late in out.late]


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 40), max_size=4), data=st.data())
def test_repeats_anywhere_change_no_output_but_the_duplicate_count(
        events: list[Event], cuts: list[int], data: st.DataObject) -> None:
    txs = _arrival_order(events)
    stream = data.draw(_repeats(txs), label="stream")
    ps, out = _run(stream, cuts, LONG)
    reference, expected = _run(txs, [], LONG)
    assert (_final(out), _late(out), ps.late_counts(), ps.counter("events"),
            ps.counter("duplicates"), ps.counter("dead_letters"), out.conflicts) == (
        _final(expected), _late(expected), reference.late_counts(), len(txs),
        len(stream) - len(txs), 0, [])


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 40), max_size=4), data=st.data())
def test_repeats_past_the_horizon_are_late_for_every_window_never_counted_twice(
        events: list[Event], cuts: list[int], data: st.DataObject) -> None:
    # The horizon (30 min) is shorter than the stream: a repeat after its original's entry
    # expired is not a duplicate, and late for every kind, so no window changes either.
    txs = _arrival_order(events)
    stream = data.draw(_repeats(txs), label="stream")
    ps, out = _run(stream, cuts)
    _, expected = _run(txs, [])
    first = {tx.tx_id: stream.index(tx) for tx in txs}
    late_originals = [(late.tx.tx_id, late.kinds, late.watermark_ms) for late in out.late
                      if late.offset == first[late.tx.tx_id]]
    late_repeats = [late for late in out.late if late.offset != first[late.tx.tx_id]]
    assert (_final(out), late_originals, {late.kinds for late in late_repeats} <= {ALL},
            ps.counter("duplicates") + len(late_repeats), ps.counter("events")) == (
        _final(expected), _late(expected), True, len(stream) - len(txs),
        len(txs) + len(late_repeats))


@SETTINGS
@given(events=_events(), cuts=st.lists(st.integers(0, 40), min_size=1, max_size=4),
       data=st.data())
def test_crash_at_any_point_gives_the_uninterrupted_outputs_and_counts(
        events: list[Event], cuts: list[int], data: st.DataObject) -> None:
    txs = _arrival_order(events)
    stream = data.draw(_repeats(txs, conflicts=True), label="stream")
    records = list(enumerate(stream))
    reference, expected = _run(stream, cuts)

    parts = _cut(records, cuts)
    flushed = data.draw(st.integers(0, len(parts)), label="batches flushed")
    crashed = data.draw(st.integers(flushed, len(parts)), label="batches applied")
    ps, store, sent = _apply_until_crash(parts, flushed, crashed)
    if crashed > flushed:
        # The flush after the crash point died part way. Either in its first stage (some
        # window kinds' records, no duplicate check's), or in its second (every kind's
        # records, some of the duplicate check's without its partition record).
        records_b = {name: list(state.dump_dirty()) for name, state in ps.tables.items()}
        if data.draw(st.booleans(), label="kinds complete"):
            store.write({kind: records_b[kind] for kind in KINDS})
            cut_short = [TXIDS]
        else:
            cut_short = list(KINDS)
        keys = [(name, key) for name in cut_short for key, _ in records_b[name]
                if key != META_KEY]
        keep = data.draw(st.sets(st.sampled_from(keys)) if keys else st.just(set()),
                         label="kept")
        store.write({name: [(k, v) for k, v in records_b[name] if (name, k) in keep]
                     for name in cut_short})
    applied = sum(len(part) for part in parts[:flushed])
    since = data.draw(st.integers(0, applied), label="re-delivered from")
    more_cuts = data.draw(st.lists(st.integers(0, 40), max_size=3), label="new cuts")
    back, everything = _restart(store, records[since:], more_cuts, sent)
    # Late events by id only: one re-sent after a flush cut short may name fewer kinds
    # (a kind whose customer record already held it counts it without listing it).
    assert (_by_id(everything), {late.offset for late in everything.late},
            state_of(back)) == (
        _by_id(expected), {late.offset for late in expected.late}, state_of(reference))
