"""The compiled duplicate check decides, remembers and writes what the Python one does."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tables import compiled
from tables.dedupe import TxIdState, entry_fields
from tables.outputs import Outputs
from tests.unit.tables.core_helpers import CONFIG, MIN, Tx
from tests.unit.tables.test_dedupe_properties import _repeats
from tests.unit.tables.test_properties import SETTINGS, _arrival_order, _cut, _events

# CI builds the extension: there, a missing one fails these tests instead of skipping them.
pytestmark = pytest.mark.skipif(
    compiled._dedupecore is None and not os.environ.get("CI"),
    reason="the compiled duplicate check was not built (no C compiler at install)")

#: A horizon short enough that entries expire within an example, and tx_ids re-apply.
SHORT = dataclasses.replace(CONFIG, duplicate_horizon_ms=20 * MIN)


def _state(check: TxIdState) -> tuple[Any, ...]:
    return (dict(check.seen), dict(check.older), list(check.unwritten), check.offset,
            check.watermark.to_list(), dict(check.counters))


def _step(check: TxIdState, batch: list[tuple[int, Tx | None]]) -> tuple[Any, ...]:
    out = Outputs()
    passed = check.apply_batch(batch, out)
    return (list(passed), [(c.offset, c.tx, c.earlier_offset) for c in out.conflicts],
            _state(check))


@SETTINGS
@given(data=st.data(), cuts=st.lists(st.integers(0, 40), max_size=5),
       short=st.booleans(), flush_every=st.integers(1, 4))
def test_compiled_equals_python(data: st.DataObject, cuts: list[int], short: bool,
                                flush_every: int) -> None:
    """Duplicates, conflicts, invalid records, re-deliveries of applied offsets and
    entries that expire and apply again: the same records pass, the same entries are
    held, the same records are written."""
    stream = data.draw(_repeats(_arrival_order(data.draw(_events())), conflicts=True))
    records = list(enumerate(stream))
    # Re-delivered records (at offsets already applied) after some batches.
    batches = _cut(records, cuts)
    batches = [batch + records[: len(batch) // 2] for batch in batches]
    config = SHORT if short else CONFIG
    python, fast = TxIdState(config), compiled.CompiledTxIdState(config)
    for n, batch in enumerate(batches):
        assert _step(fast, batch) == _step(python, batch)
        if n % flush_every == 0:
            assert fast.dump_dirty() == python.dump_dirty()
            assert _state(fast) == _state(python)


@SETTINGS
@given(entries=st.dictionaries(
    st.one_of(st.text(max_size=12), st.text(alphabet="tx-0123456789", max_size=40)),
    st.one_of(st.integers(0, 2**256 - 1), st.integers(0, 300), st.just(0)), max_size=20))
def test_segment_records_are_the_bytes_orjson_writes(entries: dict[str, int]) -> None:
    """Any text (quotes, backslashes, control and non-ASCII characters), any entry."""
    tx_ids = list(entries)
    expected = orjson.dumps([[tx_id, hex(entries[tx_id])] for tx_id in tx_ids])
    assert compiled._dedupecore.segment_record(tx_ids, entries) == expected


def test_the_pipeline_uses_the_compiled_check() -> None:
    from tables.partition import PartitionState
    assert type(PartitionState(0, CONFIG).txids) is compiled.CompiledTxIdState


@pytest.mark.parametrize("batch_size", [1, 9, 500])
def test_compiled_equals_python_at_the_horizon(batch_size: int) -> None:
    """Copies arriving when the watermark is exactly at, just before and just after the
    end of the original's horizon (events on a 5-second grid, the allowed lateness): the
    one boundary where the check decides between a duplicate and a new application."""
    start, step = 1_773_300_000_000, 5_000
    horizon = SHORT.duplicate_horizon_ms
    stream: list[Tx | None] = []
    for k in range(600):
        t = start + k * step
        stream.append(Tx(f"tx{k}", k % 3 + 1, 100 + k, t))
        # The copy of an earlier tx, sent when this event takes the watermark (5 s behind)
        # to that tx's horizon end, give or take one grid step; some with other content.
        for back in (-1, 0, 1):
            j = k - (horizon + SHORT.allowed_lateness_ms) // step + back
            if 0 <= j < k:
                original = Tx(f"tx{j}", j % 3 + 1, 100 + j, start + j * step)
                stream.append(original if (k + back) % 4 else
                              dataclasses.replace(original, amount_cents=1))
    records = list(enumerate(stream))
    python, fast = TxIdState(SHORT), compiled.CompiledTxIdState(SHORT)
    for first in range(0, len(records), batch_size):
        batch = records[first:first + batch_size]
        assert _step(fast, batch) == _step(python, batch)
    assert python.counters["duplicates"] and python.counters["conflicts"]
    assert fast.dump_dirty() == python.dump_dirty()


@SETTINGS
@given(data=st.data(), nudge=st.sampled_from([-1, 0, 1]))
def test_compiled_release_forgets_what_python_forgets(data: st.DataObject,
                                                      nudge: int) -> None:
    """Releasing a segment's tx_ids with the watermark at, just before and just after an
    entry's horizon end (re-applied tx_ids with older entries too): the same entries go."""
    stream = data.draw(_repeats(_arrival_order(data.draw(_events())), conflicts=True))
    records = list(enumerate(stream))
    python, fast = TxIdState(SHORT), compiled.CompiledTxIdState(SHORT)
    assert _step(fast, records) == _step(python, records)
    ends = sorted({entry_fields(entry)[2] + SHORT.duplicate_horizon_ms
                   for entry in python.seen.values()})
    if not ends:
        return
    watermark = data.draw(st.sampled_from(ends)) + nudge
    tx_ids = list(python.seen)
    python._release(tx_ids, watermark)
    fast._release(tx_ids, watermark)
    assert _state(fast) == _state(python)


def test_compiled_release_at_the_horizon_end() -> None:
    """An entry leaves once its event time + the horizon is at or before the watermark."""
    horizon = SHORT.duplicate_horizon_ms
    t = 1_773_300_000_000
    batch: list[tuple[int, Tx | None]] = [(0, Tx("a", 7, 100, t)), (1, Tx("b", 9, 200, t + 1))]
    for watermark, left in ((t + horizon - 1, {"a", "b"}), (t + horizon, {"b"}),
                            (t + horizon + 1, set())):
        fast = compiled.CompiledTxIdState(SHORT)
        fast.apply_batch(batch, Outputs())
        fast._release(["a", "b"], watermark)
        assert set(fast.seen) == left
