"""Idempotence and crash safety: re-delivery, snapshots, restore, partial flushes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tables.kindstate import META_KEY
from tables.outputs import Alert, Outputs, WindowResult
from tables.partition import TABLES, PartitionState
from tests.unit.tables.core_helpers import (
    CONFIG,
    Store,
    Tx,
    at,
    batch,
    by_customer,
    collect,
    fixed_rows,
    ms,
    restored,
    snapshot,
    state_of,
)

WALL = ms(datetime(2026, 3, 12, 16, 0, tzinfo=UTC))
IDLE = CONFIG.idle_timeout_ms

# Customers are numbered against their order of appearance (30 first, 10 last), so that a
# restore which rebuilds schedules in another order would show in the outputs.
C1, C2, C3, C9 = 30, 20, 10, 90

SCENARIO = [
    # batch 1: offsets 0-7
    Tx("t00", C1, 200_000, at("14:00:10")),
    Tx("t01", C2, 1_000, at("14:00:20")),
    Tx("t02", C3, 5_000, at("14:01")),
    Tx("t03", C1, 200_000, at("14:02")),
    Tx("t04", C2, 2_000, at("14:04")),
    Tx("t05", C1, 50_000, at("14:03:58")),    # out of order, within lateness
    Tx("t06", C3, 7_000, at("14:06")),        # watermark 14:05:55
    Tx("t07", C2, 3_000, at("14:04:30")),     # late: tumbling, sliding
    # batch 2: offsets 8-15
    Tx("t08", C1, 100_001, at("14:07")),
    Tx("t09", C2, 4_000, at("14:08")),        # watermark 14:07:55
    Tx("t10", C1, 400_000, at("14:06:30")),   # late: sliding; tumbling total 5000.01: alert
    Tx("t11", C3, 1_000, at("14:12")),
    Tx("t12", C1, 1, at("14:11:59")),
    Tx("t13", C2, 500, at("14:20")),          # watermark 14:19:55
    Tx("t14", C3, 600, at("14:09")),          # late: tumbling, hopping, sliding
    Tx("t15", C1, 300_000, at("14:19:58")),
    # batch 3: offsets 16-23
    Tx("t16", C2, 700, at("14:26")),
    Tx("t17", C3, 800, at("14:40")),          # watermark 14:39:55
    Tx("t18", C1, 600_000, at("14:39:57")),   # alert
    Tx("t19", C2, 10, at("14:38")),           # late: sliding
    Tx("t20", C1, 1, at("15:05")),
    Tx("t21", C3, 2, at("15:05:01")),         # watermark 15:04:56
    Tx("t22", C2, 3, at("14:49")),            # late everywhere (14:49 + gap <= watermark)
    Tx("t23", C1, 4, at("15:05:02")),
    # batch 4: offset 24, moves the watermark far on
    Tx("t24", C9, 5, at("17:00")),
]
BATCHES = [batch(SCENARIO[0:8], 0), batch(SCENARIO[8:16], 8), batch(SCENARIO[16:24], 16),
           batch(SCENARIO[24:], 24)]


def _uninterrupted() -> tuple[PartitionState, list[Outputs]]:
    ps = PartitionState(0, CONFIG)
    return ps, [ps.apply(records) for records in BATCHES]


def _canon(outs: list[Outputs]) -> list[Outputs]:
    """Outputs per batch with each customer's records in order (see ``by_customer``)."""
    return [by_customer(out) for out in outs]


def _ids(out: Outputs) -> dict[str, object]:
    """Every output by its deterministic id; a repeated id must carry the same record."""
    seen: dict[str, object] = {}
    records = ([(r.result_id, r) for r in out.window_results()]
               + [(f"session:{s.session_id}", s) for s in out.sessions]
               + [(f"alert:{a.alert_id}", a) for a in out.alerts]
               + [(f"late:{late.offset}:{late.kinds}", late) for late in out.late])
    for key, record in records:
        assert seen.setdefault(key, record) == record, key
    return seen


# -- the scenario itself ------------------------------------------------------------------


def test_scenario__alerts_and_late_events() -> None:
    ps, outs = _uninterrupted()
    out = collect(outs)
    assert (out.alerts, [(late.offset, late.kinds, late.watermark_ms) for late in out.late],
            ps.late_counts(), ps.counter("events")) == (
        [Alert(C1, at("14:05"), at("14:10"), 2, 500_001, 500_000, "t10", at("14:06:30")),
         Alert(C1, at("14:35"), at("14:40"), 1, 600_000, 500_000, "t18", at("14:39:57"))],
        [(7, ("tumbling", "sliding"), at("14:05:55")),
         (10, ("sliding",), at("14:07:55")),
         (14, ("tumbling", "hopping", "sliding"), at("14:19:55")),
         (19, ("sliding",), at("14:39:55")),
         (22, ("tumbling", "hopping", "sliding", "session"), at("15:04:56"))],
        {"tumbling": 3, "hopping": 2, "sliding": 5, "session": 1},
        25,
    )


def test_scenario__tumbling_results_of_the_first_customer() -> None:
    _, outs = _uninterrupted()
    results = [(r.start_ms, r.count, r.total) for r in collect(outs).window_results()
               if r.kind == "tumbling" and r.customer_id == C1]
    assert results == [
        (at("14:00"), 3, 450_000),
        (at("14:05"), 2, 500_001),
        (at("14:10"), 1, 1),
        (at("14:15"), 1, 300_000),
        (at("14:35"), 1, 600_000),
        (at("15:05"), 2, 5),
    ]


# -- (a) the same batch twice ---------------------------------------------------------------


def test_redelivery__same_batch_twice_changes_nothing() -> None:
    ps, _ = _uninterrupted()
    before = state_of(ps)
    snapshot(ps)  # clear dirty marks
    snapshot(ps)  # expired tx_ids leave at the flush after the one that passed them
    again = [ps.apply(records) for records in BATCHES]
    assert (again, state_of(ps), snapshot(ps)) == (
        [Outputs()] * 4, before, {name: [] for name in TABLES})


def test_redelivery__each_batch_applied_twice_in_a_row() -> None:
    ps = PartitionState(0, CONFIG)
    outs = []
    for records in BATCHES:
        outs.append(ps.apply(records))
        outs.append(ps.apply(records))
    reference, expected = _uninterrupted()
    assert (outs[1::2], outs[0::2], state_of(ps)) == (
        [Outputs()] * 4, expected, state_of(reference))


def test_redelivery__overlapping_batch_applies_only_the_new_offsets() -> None:
    ps = PartitionState(0, CONFIG)
    ps.apply(BATCHES[0])
    ps.apply(BATCHES[1])
    overlap = ps.apply(BATCHES[1][4:] + BATCHES[2])  # offsets 12-23
    _, expected = _uninterrupted()
    assert (overlap, state_of(ps)) == (expected[2], state_of(_after(3)))


def _after(done: int) -> PartitionState:
    """A partition that has applied the first ``done`` batches only."""
    fresh = PartitionState(0, CONFIG)
    for records in BATCHES[:done]:
        fresh.apply(records)
    return fresh


# -- (b) snapshot, restore, continue ----------------------------------------------------------


@pytest.mark.parametrize("done", [1, 2, 3])
def test_restore__continue_equals_uninterrupted(done: int) -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    for records in BATCHES[:done]:
        ps.apply(records)
        store.flush(ps)  # one flush per batch, accumulated like a changelog
    back = restored(store)
    outs = [back.apply(records) for records in BATCHES[done:]]
    assert (_canon(outs), state_of(back)) == (_canon(expected[done:]), state_of(reference))


def test_restore__snapshot_of_every_kind_after_batch_one() -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    ps.apply(BATCHES[0])
    records = snapshot(ps)
    back = restored(records)
    restored_state = state_of(back)
    outs = [back.apply(b) for b in BATCHES[1:]]
    assert (restored_state, [key for key, _ in records["tumbling"]][-1], _canon(outs),
            state_of(back)) == (state_of(_after(1)), META_KEY,
                                _canon(expected[1:]), state_of(reference))


def test_restore__before_every_batch() -> None:
    reference, expected = _uninterrupted()
    store = Store()
    outs = []
    for records in BATCHES:
        ps = restored(store)
        outs.append(ps.apply(records))
        store.flush(ps)
    assert (_canon(outs), state_of(restored(store))) == (
        _canon(expected), state_of(reference))


# -- (c) re-delivery from an earlier offset after a restore ------------------------------------


@pytest.mark.parametrize("done", [1, 2, 3])
def test_restore__redelivery_from_the_start_is_skipped_up_to_the_snapshot(done: int) -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    for records in BATCHES[:done]:
        ps.apply(records)
        store.flush(ps)
    back = restored(store)
    outs = [back.apply(records) for records in BATCHES]
    assert (_canon(outs), state_of(back)) == (
        [Outputs()] * done + _canon(expected[done:]), state_of(reference))


def test_restore__redelivery_in_other_batch_boundaries() -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    for records in BATCHES[:2]:
        ps.apply(records)
        store.flush(ps)
    back = restored(store)
    skipped = back.apply(BATCHES[0][3:] + BATCHES[1][:5])   # offsets 3-12: all seen
    rest = back.apply(BATCHES[1][5:] + BATCHES[2])          # offsets 13-23
    last = back.apply(BATCHES[3])
    assert (_canon([skipped, rest, last]), state_of(back)) == (
        _canon([Outputs(), expected[2], expected[3]]), state_of(reference))


def test_restore__crash_before_the_state_write_repeats_outputs_with_the_same_ids() -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    sent = [ps.apply(BATCHES[0])]
    store.flush(ps)
    sent.append(ps.apply(BATCHES[1]))  # outputs sent, then the worker dies: no flush
    back = restored(store)
    sent += [back.apply(records) for records in BATCHES[1:]]
    assert (_canon(sent[1:3]), state_of(back), _ids(collect(sent))) == (
        _canon([expected[1], expected[1]]), state_of(reference), _ids(collect(expected)))


# -- (d) a partial flush: some customers' records newer than the partition record ---------------


def _partial_b(ps_after_b: PartitionState, keep: dict[str, list[int]]) -> dict[
        str, list[tuple[bytes, bytes | None]]]:
    records = snapshot(ps_after_b)
    wanted = {kind: {str(c).encode() for c in customers} for kind, customers in keep.items()}
    return {kind: [(k, v) for k, v in pairs if k in wanted.get(kind, set())]
            for kind, pairs in records.items()}


def test_partial_flush__redelivery_never_counts_twice() -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    first = ps.apply(BATCHES[0])
    store.flush(ps)                       # snapshot A: everything after batch 1
    second = ps.apply(BATCHES[1])         # outputs of batch 2 sent
    # The flush of batch 2 died part way: only these records (and no partition record).
    partial = _partial_b(ps, {"tumbling": [C1], "session": [C1], "hopping": [C2]})
    store.write(partial)
    back = restored(store)
    outs = [back.apply(records) for records in BATCHES]   # re-delivered from offset 0
    every = collect([first, second, *outs])
    tumbling_totals: dict[int, int] = {}
    for r in _ids(every).values():
        if isinstance(r, WindowResult) and r.kind == "tumbling":
            tumbling_totals[r.customer_id] = tumbling_totals.get(r.customer_id, 0) + r.total
    for customer in back.tumbling.customers:  # windows still open
        for _, _, window in back.tumbling.windows_of(customer):
            if not window.closed:
                tumbling_totals[customer] = tumbling_totals.get(customer, 0) + window.total
    late_tumbling = {late.offset for late in every.late if "tumbling" in late.kinds}
    inputs: dict[int, int] = {}
    for offset, tx in enumerate(SCENARIO):
        if offset not in late_tumbling:
            inputs[tx.customer_id] = inputs.get(tx.customer_id, 0) + tx.amount_cents
    assert (partial["tumbling"][0][0], _ids(every), state_of(back), tumbling_totals,
            _canon(outs[2:])) == (
        str(C1).encode(), _ids(collect(expected)), state_of(reference), inputs,
        _canon(expected[2:]))


def test_partial_flush__late_counts_survive() -> None:
    reference, _ = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    ps.apply(BATCHES[0])
    store.flush(ps)
    ps.apply(BATCHES[1])  # t10 (customer C1) is late for sliding
    store.write(_partial_b(ps, {"sliding": [C1]}))
    back = restored(store)
    for records in BATCHES:
        back.apply(records)
    assert back.late_counts() == reference.late_counts()


def test_partial_flush__state_without_late_counts_matches() -> None:
    reference, expected = _uninterrupted()
    ps = PartitionState(0, CONFIG)
    store = Store()
    ps.apply(BATCHES[0])
    store.flush(ps)
    ps.apply(BATCHES[1])
    store.write(_partial_b(ps, {"sliding": [C1]}))
    back = restored(store)
    outs = [back.apply(records) for records in BATCHES]
    assert (state_of(back), _canon(outs[2:])) == (state_of(reference), _canon(expected[2:]))


def test_partial_flush__closed_window_is_never_changed() -> None:
    ps = PartitionState(0, CONFIG, kinds=("tumbling",))
    store = Store()
    ps.apply(batch([Tx("a", 1, 100, at("14:01")), Tx("b", 2, 100, at("14:01"))]),
             wall_ms=WALL)
    store.flush(ps)                               # snapshot A: watermark 14:00:55
    closed = ps.advance(WALL + IDLE + 4 * 60_000 + 5_000)   # idles to 14:05:00: closes
    store.write(_partial_b(ps, {"tumbling": [1]}))  # customer 1's record only
    back = restored(store)
    new = Tx("c", 1, 300, at("14:02"))
    out = back.apply([(2, new)], wall_ms=WALL + 5 * 60_000)
    assert (closed.window_results() != [], fixed_rows(back.tumbling, 1),
            [late.tx for late in out.late]) == (
        True, [(at("14:00"), at("14:05"), 1, 100, 100, 100, True, False)], [new])


def test_partial_flush__a_record_ahead_of_the_partition_is_written_again() -> None:
    ps = PartitionState(0, CONFIG)
    store = Store()
    ps.apply(BATCHES[0])
    store.flush(ps)
    ps.apply(BATCHES[1])
    # Only C1's tumbling record of batch 2 reached the changelog before the crash.
    store.write(_partial_b(ps, {"tumbling": [C1]}))
    back = restored(store)
    held = [(offset, tx) for offset, tx in BATCHES[1] if tx is not None and tx.customer_id == C1]
    assert held, "the scenario gives C1 events in batch 2"
    back.apply(held)  # events C1's record already holds, past the partition record's offset
    # Its record goes out again, so the changelog catches up with the local store.
    assert C1 in back.tumbling.dirty


def test_restore__a_record_of_the_older_format_flags_its_closed_windows() -> None:
    # Before records said until when their windows had closed ("c"), each closed window
    # carried the CLOSED bit (1); the partition record here is older than the customer's.
    meta = b'{"o":0,"wm":[%d,%d],"late":0,"c":{}}' % (at("14:01"), at("14:00:55"))
    customer = b'{"o":1,"w":[[%d,1,100,100,100,1],[%d,1,200,200,200,0]]}' % (
        at("14:00"), at("14:05"))
    back = restored({"tumbling": [(b"7", customer), (META_KEY, meta)]})
    rows = fixed_rows(back.tumbling, 7)
    out = back.apply([(2, Tx("x", 7, 50, at("14:03"))), (3, Tx("y", 7, 60, at("14:06")))])
    assert (rows, [late.offset for late in out.late], fixed_rows(back.tumbling, 7),
            dict(back.tumbling.dump_dirty())[b"7"]) == (
        [(at("14:00"), at("14:05"), 1, 100, 100, 100, True, False),
         (at("14:05"), at("14:10"), 1, 200, 200, 200, False, False)],
        [2],
        [(at("14:00"), at("14:05"), 1, 100, 100, 100, True, False),
         (at("14:05"), at("14:10"), 2, 260, 60, 200, False, False)],
        b'{"o":3,"w":[[%d,1,100,100,100,0],[%d,2,260,60,200,0]],"c":%d}' % (
            at("14:00"), at("14:05"), at("14:05:55")))
