"""BulkRecovery: a fetch's changelog records land in RocksDB exactly as one by one, in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.compose import create_app
from app.kafka.recovery import BulkRecovery
from app.settings import Settings

KEYS = [b"1", b"2", b"3", b"17", b"~partition"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BulkRecovery, Any]]:
    datadir: Path = tmp_path_factory.mktemp("bulk")
    app = create_app(Settings.load(window_kinds="tumbling", datadir=str(datadir)))
    recovery = app.tables.recovery
    assert isinstance(recovery, BulkRecovery)
    yield recovery, app.state_tables["tumbling"]


def _reset(recovery: BulkRecovery, table: Any, tp: TP, role: str) -> None:
    db = table.data._db_for_partition(tp.partition)
    for key in list(db.keys()):
        db.delete(key)
    recovery.tp_to_table.clear()
    recovery.active_tps.clear()
    recovery.standby_tps.clear()
    recovery.active_offsets.clear()
    recovery.standby_offsets.clear()
    recovery.active_highwaters.clear()
    recovery.standby_highwaters.clear()
    recovery.tp_to_table[tp] = table
    (recovery.active_tps if role == "active" else recovery.standby_tps).add(tp)


#: A changelog partition: each record's key and value (None: a deletion).
changelogs = st.lists(st.tuples(st.sampled_from(KEYS),
                                st.one_of(st.none(), st.binary(min_size=1, max_size=8))),
                      min_size=1, max_size=60)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=changelogs, data=st.data(), role=st.sampled_from(["active", "standby"]),
       first=st.integers(0, 1000))
def test_batches_write_what_the_changelog_says_in_order(
        tables: tuple[BulkRecovery, Any], log: list[tuple[bytes, bytes | None]],
        data: st.DataObject, role: str, first: int) -> None:
    recovery, table = tables
    tp = TP(table.changelog_topic.get_topic_name(), 0)
    _reset(recovery, table, tp, role)
    records = [SimpleNamespace(offset=first + n, key=key, value=value)
               for n, (key, value) in enumerate(log)]
    # Fetches in offset order; a fetch may start again before the last one ended (Faust
    # seeks to the persisted offset itself, so that record always comes twice).
    position = 0
    while position < len(records):
        start = max(0, position - data.draw(st.integers(0, 3)))
        end = data.draw(st.integers(position + 1, len(records)))
        recovery.apply_records(tp, table, records[start:end])
        position = end
    expected: dict[bytes, bytes] = {}
    for key, value in log:
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    db = table.data._db_for_partition(tp.partition)
    offsets = recovery.active_offsets if role == "active" else recovery.standby_offsets
    stored = {bytes(k): bytes(v) for k, v in db.items() if k != table.data.offset_key}
    assert (stored, table.persisted_offset(tp), offsets[tp]) == (
        expected, records[-1].offset, records[-1].offset)


def test_recovery_ends_once_the_last_record_is_written(
        tables: tuple[BulkRecovery, Any]) -> None:
    recovery, table = tables
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    _reset(recovery, table, tp, "active")
    recovery.active_highwaters[tp] = 9  # Faust keeps end offset - 1
    recovery.in_recovery = True
    recovery.signal_recovery_end.clear()
    records = [SimpleNamespace(offset=n, key=b"1", value=str(n).encode()) for n in range(10)]
    recovery.apply_records(tp, table, records[:6])
    recovery.after_records()
    halfway = (recovery.in_recovery, recovery.signal_recovery_end.is_set())
    recovery.apply_records(tp, table, records[5:])
    recovery.after_records()
    assert (halfway, recovery.in_recovery, recovery.signal_recovery_end.is_set(),
            table.data._db_for_partition(1)[b"1"]) == ((True, False), False, True, b"9")


def test_a_fresh_standby_counts_every_record_it_has_still_to_apply(
        tables: tuple[BulkRecovery, Any]) -> None:
    recovery, table = tables
    tp = TP(table.changelog_topic.get_topic_name(), 2)
    _reset(recovery, table, tp, "standby")
    recovery.standby_highwaters[tp] = 9  # ten records, offsets 0..9
    recovery.standby_offsets[tp] = -1  # what Faust seeds a partition with no local data
    before = (recovery.standby_behind(), recovery.standby_remaining_total())
    records = [SimpleNamespace(offset=n, key=b"1", value=b"x") for n in range(10)]
    recovery.apply_records(tp, table, records[:4])
    halfway = recovery.standby_behind()
    recovery.apply_records(tp, table, records[4:])
    assert (before, halfway, recovery.standby_behind()) == ((10, 0), 6, 0)


def test_a_record_without_a_key_is_skipped_and_the_rest_still_restored(
        tables: tuple[BulkRecovery, Any]) -> None:
    # A foreign record on a changelog; RocksDB takes no None key, and its write batch would
    # have failed the whole fetch (Faust's own path fails the same way).
    recovery, table = tables
    tp = TP(table.changelog_topic.get_topic_name(), 2)
    _reset(recovery, table, tp, "active")
    records = [SimpleNamespace(offset=0, key=b"1", value=b"a"),
               SimpleNamespace(offset=1, key=None, value=b"foreign"),
               SimpleNamespace(offset=2, key=b"2", value=b"b")]
    assert recovery.apply_records(tp, table, records) == 3
    db = table.data._db_for_partition(tp.partition)
    stored = {bytes(k): bytes(v) for k, v in db.items() if k != table.data.offset_key}
    assert (stored, table.persisted_offset(tp)) == ({b"1": b"a", b"2": b"b"}, 2)
    assert recovery.app.skipped_records.snapshot() == {tp.topic: 1}
