"""TableStore: staged records reach RocksDB as the changelog has them, the latest per key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.compose import create_app
from app.settings import Settings
from app.table_store import TableStore

KEYS = [b"1", b"2", b"3", b"17", b"~partition"]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    datadir: Path = tmp_path_factory.mktemp("staged")
    app = create_app(Settings.load(window_kinds="tumbling", datadir=str(datadir)))
    yield app.state_tables["tumbling"]


def _empty(table: Any, partition: int) -> Any:
    store = table.data
    store.write_staged()  # whatever an earlier example left
    db = store._db_for_partition(partition)
    for key in list(db.keys()):
        db.delete(key)
    return db


def _contents(table: Any, db: Any) -> dict[bytes, bytes]:
    return {bytes(k): bytes(v) for k, v in db.items() if k != table.data.offset_key}


def test_the_tables_use_it(table: Any) -> None:
    assert isinstance(table.data, TableStore)


#: Flushes of one table partition: each a list of records (None: a deletion).
flushes = st.lists(st.lists(st.tuples(st.sampled_from(KEYS),
                                      st.one_of(st.none(), st.binary(min_size=1, max_size=8))),
                            max_size=8), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(staged=flushes, before=st.dictionaries(st.sampled_from(KEYS),
                                               st.binary(min_size=1, max_size=8)))
def test_a_write_leaves_what_the_flushes_would_have_left_one_by_one(
        table: Any, staged: list[list[tuple[bytes, bytes | None]]],
        before: dict[bytes, bytes]) -> None:
    db = _empty(table, 0)
    for key, value in before.items():
        db.put(key, value)
    expected = dict(before)
    store = table.data
    for records in staged:
        store.stage(0, records)
        for key, value in records:
            if value is None:
                expected.pop(key, None)
            else:
                expected[key] = value
    written = store.write_staged([0])
    assert _contents(table, db) == expected
    assert written == len({key for records in staged for key, _ in records})


def test_the_covered_offset_is_recorded_with_the_records_and_read_before(table: Any) -> None:
    db = _empty(table, 1)
    store = table.data
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    store.set_persisted_offset(tp, 9)
    store.stage(1, [(b"1", b"a")])
    store.cover(1, 12)
    store.cover(1, 11)  # an older acknowledgement never moves it back
    # Staged, not written: the guard and Faust's recovery already see the covered offset.
    assert (store.persisted_offset(tp), db.get(store.offset_key), db.get(b"1")) == (
        12, b"9", None)
    assert store.write_staged([1]) == 1
    assert (db.get(store.offset_key), db.get(b"1"), store.persisted_offset(tp)) == (
        b"12", b"a", 12)
    # Nothing staged is written twice, and a later offset stays with its records.
    assert store.write_staged([1]) == 0
    store.set_persisted_offset(tp, 20)  # the bulk restore, say, went further
    store.cover(1, 15)
    assert store.persisted_offset(tp) == 20


def test_a_partition_not_held_any_more_drops_what_is_staged(table: Any) -> None:
    store = table.data
    store.stage(7, [(b"1", b"a")])
    store.cover(7, 3)
    assert 7 not in store._dbs
    assert store.write_staged([7]) == 0
    assert 7 not in store._dbs  # not opened for it
    assert (store._staged.get(7), store._covered.get(7)) == (None, None)


def test_a_revoked_partition_is_written_first(table: Any) -> None:
    db = _empty(table, 2)
    store = table.data
    tp = TP(table.changelog_topic.get_topic_name(), 2)
    store.stage(2, [(b"17", b"z")])
    store.cover(2, 4)
    store.revoke_partitions(table, {tp})
    assert 2 not in store._dbs
    assert (db.get(b"17"), db.get(store.offset_key)) == (b"z", b"4")
