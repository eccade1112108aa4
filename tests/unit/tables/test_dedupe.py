"""The duplicate check: the same tx_id again is skipped (or dead-lettered), exactly, across
batches, flushes cut short, restarts and the horizon."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from tables.dedupe import SEGMENT_SIZE, TXIDS
from tables.kindstate import META_KEY
from tables.outputs import Alert, DuplicateConflict, LateEvent, Outputs
from tables.partition import KINDS, PartitionState
from tests.unit.tables.core_helpers import (
    CONFIG,
    MIN,
    Store,
    Tx,
    at,
    batch,
    by_customer,
    collect,
    fixed_rows,
    restored,
    session_rows,
    snapshot,
    state_of,
)

ALL = ("tumbling", "hopping", "sliding", "session")

A1 = Tx("a1", 1, 10_000, at("14:01"))
B1 = Tx("b1", 2, 1_000, at("14:02"))
A2 = Tx("a2", 1, 495_000, at("14:03"))      # takes customer 1 over 5000.00 in [14:00, 14:05)
A3 = Tx("a3", 1, 2_000, at("14:07"))
B2 = Tx("b2", 2, 3_000, at("14:09"))
C1 = Tx("c1", 3, 500, at("15:00"))          # moves the watermark on: every window closes

#: The purchases, each once.
UNIQUE = [A1, B1, A2, A3, B2, C1]
#: The same purchases with repeats (a payment service retrying, an outbox relayed twice),
#: in three batches: offsets 0-3, 4-7, 8-9. The repeat of a1 at offset 8 comes after the
#: watermark passed its window (14:08:55): a duplicate all the same, not a late event.
WITH_REPEATS = [A1, B1, A2, A2, B1, A3, A2, B2, A1, C1]
BATCHES = [batch(WITH_REPEATS[0:4], 0), batch(WITH_REPEATS[4:8], 4), batch(WITH_REPEATS[8:], 8)]
#: Offsets of the repeats.
REPEATS = [3, 4, 6, 8]


def _run(batches: Sequence[Sequence[tuple[int, Tx | None]]],
         ) -> tuple[PartitionState, list[Outputs]]:
    ps = PartitionState(0, CONFIG)
    return ps, [ps.apply(records) for records in batches]


def _counters(ps: PartitionState) -> dict[str, int]:
    return {name: ps.counter(name)
            for name in ("events", "dead_letters", "duplicates", "conflicts")}


def _tumbling(out: Outputs) -> list[tuple[int, int, int, int]]:
    return [(r.customer_id, r.start_ms, r.count, r.total) for r in out.window_results()
            if r.kind == "tumbling"]


def _same_outputs(out: Outputs) -> tuple[object, ...]:
    """What a repeat must never change: windows, sessions, alerts and late events by tx."""
    return (sorted(out.window_results(), key=lambda r: (r.kind, r.customer_id, r.start_ms)),
            sorted(out.sessions, key=lambda s: (s.customer_id, s.start_ms)), out.alerts,
            [(late.tx, late.kinds, late.watermark_ms) for late in out.late])


# -- exact windows with repeats -------------------------------------------------------------


def test_repeats_across_batches__skipped_and_counted_windows_exact() -> None:
    ps, outs = _run(BATCHES)
    every = collect(outs)
    _, reference = _run([batch(UNIQUE)])
    assert (_tumbling(every), every.alerts, every.late, every.conflicts, _counters(ps),
            _same_outputs(every)) == (
        [(1, at("14:00"), 2, 505_000), (2, at("14:00"), 1, 1_000),
         (1, at("14:05"), 1, 2_000), (2, at("14:05"), 1, 3_000)],
        [Alert(1, at("14:00"), at("14:05"), 2, 505_000, 500_000, "a2", at("14:03"))],
        [], [],
        {"events": 6, "dead_letters": 0, "duplicates": 4, "conflicts": 0},
        _same_outputs(collect(reference)),
    )


def test_repeats__every_kind_passes_them_so_a_redelivery_is_skipped_by_offset() -> None:
    ps, _ = _run(BATCHES)
    # A batch that ends with a repeat: every table's offset passes it.
    ps.apply([(10, Tx("d1", 3, 100, at("15:01"))), (11, C1)])
    assert ({name: table.offset for name, table in ps.tables.items()},
            ps.counter("duplicates")) == (dict.fromkeys((*KINDS, TXIDS), 11), 5)


def test_repeat_in_the_same_batch_as_its_original() -> None:
    ps, (out,) = _run([batch([A2, A2, A2])])
    assert (fixed_rows(ps.tumbling, 1), len(out.alerts), _counters(ps)) == (
        [(at("14:00"), at("14:05"), 1, 495_000, 495_000, 495_000, False, False)], 0,
        {"events": 1, "dead_letters": 0, "duplicates": 2, "conflicts": 0})


def test_invalid_records_between_repeats_keep_their_place() -> None:
    ps, (out,) = _run([[(0, A1), (1, None), (2, A1), (3, None), (4, B1)]])
    assert (_counters(ps), fixed_rows(ps.tumbling, 1)[0][2], fixed_rows(ps.tumbling, 2)[0][2],
            out.conflicts) == (
        {"events": 2, "dead_letters": 2, "duplicates": 1, "conflicts": 0}, 1, 1, [])


# -- conflicting repeats ----------------------------------------------------------------------


def test_conflict__same_tx_id_other_content_is_dead_lettered_and_changes_nothing() -> None:
    cheaper = Tx("a2", 1, 10_000, at("14:03"))          # amount differs
    elsewhere = Tx("a2", 2, 495_000, at("14:04"))       # customer and time differ
    ps, outs = _run([batch([A1, A2]), [(2, cheaper), (3, B1), (4, elsewhere)]])
    assert (outs[1].conflicts, fixed_rows(ps.tumbling, 1), fixed_rows(ps.tumbling, 2),
            session_rows(ps.sessions, 1), _counters(ps)) == (
        [DuplicateConflict(2, cheaper, earlier_offset=1, earlier_customer_id=1,
                           earlier_amount_cents=495_000, earlier_event_time_ms=at("14:03")),
         DuplicateConflict(4, elsewhere, earlier_offset=1, earlier_customer_id=1,
                           earlier_amount_cents=495_000, earlier_event_time_ms=at("14:03"))],
        [(at("14:00"), at("14:05"), 2, 505_000, 10_000, 495_000, False, True)],
        [(at("14:00"), at("14:05"), 1, 1_000, 1_000, 1_000, False, False)],
        [(at("14:01"), at("14:03"), 2, 505_000, 10_000, 495_000, False)],
        # A conflict is a dead letter too: it is on the dead-letter topic.
        {"events": 3, "dead_letters": 2, "duplicates": 0, "conflicts": 2},
    )


# -- restarts and flushes cut short -----------------------------------------------------------


def _flushed_after_first_batch() -> tuple[PartitionState, Store]:
    ps = PartitionState(0, CONFIG)
    store = Store()
    ps.apply(BATCHES[0])
    store.flush(ps)
    ps.apply(BATCHES[1])
    return ps, store


def _redeliver(store: Store) -> tuple[PartitionState, list[Outputs]]:
    """Restore, then re-deliver from the offset committed after the first batch."""
    back = restored(store)
    return back, [back.apply(records) for records in BATCHES[1:]]


def _by_id(out: Outputs) -> dict[str, object]:
    """Every output by its id (a repeat, after a crash, must carry the same record)."""
    seen: dict[str, object] = {}
    for key, record in ([(r.result_id, r) for r in out.window_results()]
                        + [(f"session:{s.session_id}", s) for s in out.sessions]
                        + [(f"alert:{a.alert_id}", a) for a in out.alerts]
                        + [(f"late:{late.tx.tx_id}", late) for late in out.late]):
        assert seen.setdefault(key, record) == record, key
    return seen


def test_restart__window_kinds_cut_short_duplicate_check_not_written() -> None:
    reference, expected = _run(BATCHES)
    ps = PartitionState(0, CONFIG)
    store = Store()
    sent = [ps.apply(BATCHES[0])]
    store.flush(ps)
    sent.append(ps.apply(BATCHES[1]))
    records = snapshot(ps)
    # Only customer 1's tumbling record of the second flush reached the changelog; the
    # duplicate check's records are written only once every kind's are acknowledged.
    store.write({"tumbling": [(key, value) for key, value in records["tumbling"]
                              if key == b"1"]})
    back, outs = _redeliver(store)
    assert (_by_id(collect(sent + outs)), by_customer(outs[1]), state_of(back),
            _counters(back)) == (
        _by_id(collect(expected)), by_customer(expected[2]), state_of(reference),
        {"events": 6, "dead_letters": 0, "duplicates": 4, "conflicts": 0})


def test_restart__duplicate_check_cut_short_counts_each_repeat_once() -> None:
    reference, expected = _run(BATCHES)
    ps, store = _flushed_after_first_batch()
    records = snapshot(ps)
    # Every kind's flush completed; of the duplicate check's, the segment of a3 and b2
    # (offsets 5 and 7) arrived, not its partition record.
    store.write({kind: records[kind] for kind in KINDS})
    store.write({TXIDS: [(key, value) for key, value in records[TXIDS] if key != META_KEY]})
    back, outs = _redeliver(store)
    # a3 at offset 5 is its own entry: a re-delivery, not a duplicate. The repeats at 4
    # and 6 are counted now (the stored partition record counted only the one at 3).
    assert (outs[0], _same_outputs(collect(outs)), state_of(back), _counters(back)) == (
        Outputs(), _same_outputs(expected[2]), state_of(reference),
        {"events": 6, "dead_letters": 0, "duplicates": 4, "conflicts": 0})


def test_restart__same_record_redelivered_is_not_a_duplicate() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch([A1, A2]))
    store = Store()
    # The crash came after the duplicate check's entries were written, before its
    # partition record and before any kind's records (a local store ahead of the
    # changelog; the order of a flush is never this, but an entry at its own offset must
    # never count as a duplicate).
    store.write({TXIDS: [(k, v) for k, v in snapshot(ps)[TXIDS] if k != META_KEY]})
    back = restored(store)
    out = back.apply(batch([A1, A2]))
    assert (fixed_rows(back.tumbling, 1), len(out.alerts), _counters(back),
            back.txids.unwritten) == (
        [(at("14:00"), at("14:05"), 2, 505_000, 10_000, 495_000, False, True)], 1,
        {"events": 2, "dead_letters": 0, "duplicates": 0, "conflicts": 0},
        ["a1", "a2"])  # written again: the changelog catches up with the local store


def test_restart__from_the_changelog_alone_still_skips_a_later_repeat() -> None:
    ps, _ = _run(BATCHES[:2])
    store = Store()
    store.flush(ps)
    back = restored(store)
    skipped = back.apply([(8, A1), (9, A3)])
    rows = fixed_rows(back.tumbling, 1)
    out = back.apply([(10, C1)])
    assert (skipped, rows, _tumbling(out), _counters(back), back.txids.remembered) == (
        Outputs(),
        [(at("14:00"), at("14:05"), 2, 505_000, 10_000, 495_000, True, True),
         (at("14:05"), at("14:10"), 1, 2_000, 2_000, 2_000, False, False)],
        [(1, at("14:05"), 1, 2_000), (2, at("14:05"), 1, 3_000)],
        {"events": 6, "dead_letters": 0, "duplicates": 5, "conflicts": 0}, 6)


def test_records__a_segment_of_the_new_tx_ids_then_the_partition_record() -> None:
    ps, _ = _run([batch([A1, A2, A2])])
    records = snapshot(ps)[TXIDS]
    # An entry: offset << 192 | customer << 128 | event time << 64 | cents, in hex.
    assert ([key for key, _ in records], orjson.loads(records[0][1] or b""), records[1][1]) == (
        [b"s:0", META_KEY],
        [["a1", hex(0 << 192 | 1 << 128 | at("14:01") << 64 | 10_000)],
         ["a2", hex(1 << 192 | 1 << 128 | at("14:03") << 64 | 495_000)]],
        b'{"o":2,"wm":[%d,%d],"c":{"duplicates":1}}' % (at("14:03"), at("14:02:55")))


def test_records__a_segment_holds_at_most_segment_size_tx_ids() -> None:
    many = [Tx(f"m{i}", 1 + i % 7, 100, at("14:00") + i) for i in range(2 * SEGMENT_SIZE + 1)]
    ps, _ = _run([batch(many)])
    records = snapshot(ps)[TXIDS]
    back = restored({TXIDS: records})
    assert ([(key, len(orjson.loads(value or b""))) for key, value in records[:-1]],
            back.txids.remembered, back.apply([(len(many), many[-1])]),
            back.counter("duplicates")) == (
        [(b"s:0", SEGMENT_SIZE), (b"s:1", SEGMENT_SIZE), (b"s:2", 1)], len(many), Outputs(), 1)


def test_records__a_tx_id_named_like_the_partition_record_is_kept_apart() -> None:
    odd = Tx("~partition", 1, 100, at("14:01"))
    ps, _ = _run([batch([odd, odd])])
    back = restored({TXIDS: snapshot(ps)[TXIDS]})
    out = back.apply([(2, odd)])
    assert (back.txids.offset, back.counter("duplicates"), out) == (2, 2, Outputs())


# -- the horizon ------------------------------------------------------------------------------


def test_horizon__a_repeat_after_it_is_late_for_every_window_not_counted_twice() -> None:
    # Horizon 30 min: the entry of a1 (14:01) expires once the watermark reaches 14:31.
    ps, _ = _run([batch([A1, Tx("x", 2, 100, at("14:40"))])])   # watermark 14:39:55
    out = ps.apply([(2, A1)])
    # Late for every kind: no window is opened again (a1's own left with the retention),
    # its session still counts it once.
    assert (out.late, fixed_rows(ps.tumbling, 1), session_rows(ps.sessions, 1),
            _counters(ps)) == (
        [LateEvent(2, A1, ALL, at("14:39:55"))], [],
        [(at("14:01"), at("14:01"), 1, 10_000, 10_000, 10_000, True)],
        {"events": 3, "dead_letters": 0, "duplicates": 0, "conflicts": 0})


def test_horizon__a_repeat_within_it_is_a_duplicate_even_after_its_windows_closed() -> None:
    ps, _ = _run([batch([A1, Tx("x", 2, 100, at("14:30"))])])   # watermark 14:29:55
    out = ps.apply([(2, A1)])
    assert (out, _counters(ps)) == (
        Outputs(), {"events": 2, "dead_letters": 0, "duplicates": 1, "conflicts": 0})


def test_horizon__expired_entries_leave_with_their_segment_a_flush_after() -> None:
    ps, _ = _run([batch([A1, B1])])
    first = snapshot(ps)[TXIDS]                      # segment 0: a1 and b1, expired by 14:32
    ps.apply([(2, Tx("x", 3, 100, at("14:40")))])    # watermark 14:39:55
    second = snapshot(ps)[TXIDS]                     # segment 1: x
    remembered = ps.txids.remembered
    third = snapshot(ps)[TXIDS]                      # the watermark of the second went out
    assert ([key for key, _ in first], [key for key, _ in second], remembered, third[:1],
            ps.txids.remembered) == (
        [b"s:0", META_KEY], [b"s:1", META_KEY], 3, [(b"s:0", None)], 1)


def test_horizon__expired_entries_leave_a_flush_late_so_a_flush_cut_short_is_safe() -> None:
    ps, _ = _run([batch([A1])])
    store = Store()
    store.flush(ps)
    # The repeat at offset 2 meets a1 within the horizon; y then moves the watermark past
    # a1's (14:31). Had a1 left in this flush, a restart from the previous partition
    # record would meet no a1 at offset 2 and apply the repeat.
    ps.apply([(1, Tx("x", 2, 100, at("14:25"))), (2, A1), (3, Tx("y", 2, 100, at("14:40")))])
    records = snapshot(ps)
    store.write({kind: records[kind] for kind in KINDS})
    store.write({TXIDS: [(key, value) for key, value in records[TXIDS] if key != META_KEY]})
    back = restored(store)
    back.apply([(1, Tx("x", 2, 100, at("14:25"))), (2, A1), (3, Tx("y", 2, 100, at("14:40")))])
    assert ([key for key, _ in records[TXIDS]], _counters(back), state_of(back)) == (
        [b"s:1", META_KEY],
        {"events": 3, "dead_letters": 0, "duplicates": 1, "conflicts": 0}, state_of(ps))


def test_horizon__a_conflicting_tx_id_after_it_is_new_and_its_own_repeats_are_caught() -> None:
    reused = Tx("a1", 2, 7_700, at("14:41"))
    ps, _ = _run([batch([A1, Tx("x", 3, 100, at("14:40"))])])
    store = Store()
    store.flush(ps)
    outs = [ps.apply([(2, reused), (3, reused)])]
    store.flush(ps)
    back = restored(store)
    # A restart that re-delivers the reuse and its repeat decides as the first run did;
    # then a1 with yet other content conflicts with the reuse.
    other = Tx("a1", 1, 10_000, at("14:42"))
    again = back.apply([(2, reused), (3, reused), (4, other)])
    assert (collect(outs).conflicts, fixed_rows(ps.tumbling, 2), _counters(ps),
            again.conflicts, _counters(back)) == (
        [], [(at("14:40"), at("14:45"), 1, 7_700, 7_700, 7_700, False, False)],
        {"events": 3, "dead_letters": 0, "duplicates": 1, "conflicts": 0},
        [DuplicateConflict(4, other, earlier_offset=2, earlier_customer_id=2,
                           earlier_amount_cents=7_700, earlier_event_time_ms=at("14:41"))],
        {"events": 3, "dead_letters": 1, "duplicates": 1, "conflicts": 1})


def test_horizon__replaced_entry_stays_until_it_may_leave_so_a_restart_decides_alike() -> None:
    # a1 (offset 0) expires; the flush after that is cut short after the duplicate
    # check's segment with the reuse (offset 4) was written. Offset 2, a repeat of a1 that
    # arrived while a1 was still within the horizon, must still be a duplicate.
    first = Tx("a1", 1, 10_000, at("14:20"))
    ps, _ = _run([batch([first])])
    store = Store()
    store.flush(ps)
    reused = Tx("a1", 1, 999, at("14:55"))
    ps.apply([(1, Tx("x", 3, 100, at("14:45"))), (2, first),     # watermark 14:44:55
              (3, Tx("y", 3, 100, at("14:52"))), (4, reused)])   # a1 expired at 14:50
    records = snapshot(ps)
    store.write({kind: records[kind] for kind in KINDS})
    store.write({TXIDS: [(key, value) for key, value in records[TXIDS] if key != META_KEY]})
    back = restored(store)
    back.apply([(1, Tx("x", 3, 100, at("14:45"))), (2, first),
                (3, Tx("y", 3, 100, at("14:52"))), (4, reused)])
    assert (_counters(ps), _counters(back), state_of(back) == state_of(ps),
            sorted(back.txids.older)) == (
        {"events": 4, "dead_letters": 0, "duplicates": 1, "conflicts": 0},
        {"events": 4, "dead_letters": 0, "duplicates": 1, "conflicts": 0}, True, ["a1"])


def test_horizon__a_replaced_entry_and_its_successor_leave_together() -> None:
    reused = Tx("a1", 2, 7_700, at("14:41"))
    ps, _ = _run([batch([A1, Tx("x", 3, 100, at("14:40")), reused])])
    held = (ps.txids.remembered, sorted(ps.txids.older))
    snapshot(ps)                                     # segment 0, expired by 15:11
    ps.apply([(3, Tx("y", 3, 100, at("15:20")))])    # both a1 entries expired
    snapshot(ps)
    records = snapshot(ps)[TXIDS]
    assert (held, records[:1], ps.txids.remembered, ps.txids.older) == (
        (2, ["a1"]), [(b"s:0", None)], 1, {})


def test_horizon__a_longer_one_catches_the_same_late_repeat() -> None:
    ps = PartitionState(0, dataclasses.replace(CONFIG, duplicate_horizon_ms=120 * MIN))
    ps.apply(batch([A1, Tx("x", 2, 100, at("14:40"))]))
    out = ps.apply([(2, A1)])
    assert (out, ps.counter("duplicates"), ps.txids.remembered) == (Outputs(), 1, 2)
