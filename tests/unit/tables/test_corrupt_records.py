"""State records txstream did not write (or damaged ones) are refused whole and skipped."""

from __future__ import annotations

import orjson
import pytest

from app.kafka.changelog import ChangelogPartition, load_kind
from tables.fixed import FixedWindowState
from tables.kindstate import META_KEY
from tables.partition import KINDS, PartitionState
from tables.validate import CorruptRecord
from tables.windows import WindowKind
from tests.unit.tables.core_helpers import CONFIG, Store, Tx, at, batch, state_of

EVENTS = [Tx("a", 7, 1_000, at("14:00:10")), Tx("b", 8, 2_500, at("14:01")),
          Tx("c", 7, 700, at("14:07"))]


def _stored() -> Store:
    ps = PartitionState(0, CONFIG)
    ps.apply(batch(EVENTS))
    store = Store()
    store.flush(ps)
    return store


FOREIGN = [
    b"not json", b"[1, 2, 3]", b'"text"', b"null", b"{}", b'{"o": "x", "w": []}',
    b'{"o": 1, "w": [[1, 2, 3]]}', b'{"o": 1, "w": [[1, 2, 3, 4, 5, "x"]]}',
    b'{"o": 1, "w": [[1, 2, 3, 4, 5, 6.5]]}', b'{"o": 1, "w": [[1, 2, 3, 4, 5, null]]}',
    b'{"o": 1, "w": [[1, 2, 3, 4, 5, [6]]]}', b'{"o": 1, "w": {"a": 1}}', b'{"o": true, "w": []}',
    b'{"o": 1, "e": [[1, 2, 3]], "f": 0}', b'{"o": 1, "s": [[1, 2]]}', b'{"o": 1, "w": [{}]}',
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", FOREIGN)
def test_a_foreign_customer_record_is_refused_and_changes_nothing(kind: str,
                                                                 value: bytes) -> None:
    state = PartitionState(0, CONFIG).kinds[kind]
    with pytest.raises(CorruptRecord):
        state.load(b"7", value)
    assert state.customers == {}


@pytest.mark.parametrize("value", [
    b"{}", b'{"o": 3}', b'{"o": 3, "wm": [1]}', b'{"o": 3, "wm": [1, "2"]}',
    b'{"o": 3, "wm": [1, 2], "late": 1.5}', b'{"o": 3, "wm": [1, 2], "c": {"events": "1"}}',
    b'{"o": 3, "wm": [1, 2], "c": [1]}', b"\xff\xfe",
])
def test_a_foreign_partition_record_is_refused_and_changes_nothing(value: bytes) -> None:
    state = PartitionState(0, CONFIG).tumbling
    with pytest.raises(CorruptRecord):
        state.load(META_KEY, value)
    assert (state.offset, state.late, state.counters) == (-1, 0, {})


@pytest.mark.parametrize("key", [b"x", b"-7", b"", b"12345678901234567890", b"7 "])
def test_a_key_that_is_no_customer_id_is_refused(key: bytes) -> None:
    good = _stored().tables["tumbling"][b"7"]
    with pytest.raises(CorruptRecord):
        FixedWindowState(WindowKind.TUMBLING, CONFIG).load(key, good)


def test_a_changelog_with_foreign_records_loads_every_record_of_ours() -> None:
    store = _stored()
    expected = FixedWindowState(WindowKind.TUMBLING, CONFIG)
    part = ChangelogPartition(0)
    for key, value in store.tables["tumbling"].items():
        if key == META_KEY:
            part.add(b"999", b'{"alert_id": ["x"]}')  # before the flush's last record
            part.add(b"x", b"garbage")
        part.add(key, value)
        expected.load(key, value)
    expected.finish_load()
    skipped: list[tuple[bytes, str]] = []
    state = FixedWindowState(WindowKind.TUMBLING, CONFIG)
    loaded = load_kind(state, part, lambda key, reason: skipped.append((key, reason)))
    assert loaded == len(store.tables["tumbling"])
    assert [key for key, _ in skipped] == [b"999", b"x"]
    assert skipped[1][1] == "not JSON"
    assert state.windows_of(7) == expected.windows_of(7) != []
    assert (state.offset, state.watermark.value) == (expected.offset, expected.watermark.value)


def test_a_state_of_ours_still_loads_exactly() -> None:
    # The checks refuse nothing txstream writes: a round trip of every kind is exact.
    ps = PartitionState(0, CONFIG)
    ps.apply(batch(EVENTS))
    store = Store()
    store.flush(ps)
    again = PartitionState(0, CONFIG)
    for name, state in again.tables.items():
        for key, value in store.tables[name].items():
            state.load(key, orjson.dumps(orjson.loads(value)))
        state.finish_load()
    assert state_of(again) == state_of(ps)


@pytest.mark.parametrize(("key", "value"), [
    (b"s:1", b'[["a", "xyz"]]'), (b"s:1", b'[["a"]]'), (b"s:1", b'{"a": "0x1"}'),
    (b"s:1", b'[[1, "0x1"]]'), (b"s:1", b'[["a", "0x1"], ["b", 2]]'), (b"s:1", b"nope"),
    (b"7", b'[["a", "0x1"]]'), (b"s:x", b'[["a", "0x1"]]'), (b"s:1", b'[["a", "-0x1"]]'),
    (META_KEY, b'{"o": 1}'), (META_KEY, b"[]"),
])
def test_a_foreign_record_of_the_duplicate_check_is_refused_and_changes_nothing(
        key: bytes, value: bytes) -> None:
    state = PartitionState(0, CONFIG).txids
    with pytest.raises(CorruptRecord):
        state.load(key, value)
    assert (state.seen, state.offset) == ({}, -1)
