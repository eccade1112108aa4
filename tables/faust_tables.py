"""The Faust tables that hold the core's state: load a partition, write its dirty records."""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .dedupe import TXIDS
from .partition import PartitionState
from .validate import CorruptRecord

#: Told the table (kind), the key and the reason of a state record that was skipped.
OnCorrupt = Callable[[str, bytes, str], None]

__all__ = ["TableWrite", "dirty_records", "load_partition", "stage_records"]


@dataclass(frozen=True, slots=True)
class TableWrite:
    """The records of one table partition written in one flush, in order."""

    table: Any
    partition: int
    #: ``(key, value)`` in order; a ``None`` value deletes the key.
    records: list[tuple[bytes, bytes | None]]

    @property
    def changelog(self) -> str:
        """The table's changelog topic."""
        return str(self.table.changelog_topic.get_topic_name())


def dirty_records(tables: Mapping[str, Any],
                  state: PartitionState) -> tuple[list[TableWrite], list[TableWrite]]:
    """Every changed record of every table, each table's ``~partition`` record last, in two
    stages: the window kinds', then the duplicate check's.

    The second stage is to be written only once the broker has acknowledged the first:
    the duplicate check's partition record then never names an offset that a window
    kind's table does not cover (see :class:`~tables.dedupe.TxIdState`).
    """
    kinds: list[TableWrite] = []
    txids: list[TableWrite] = []
    for name, table_state in state.tables.items():
        records = list(table_state.dump_dirty())
        if records:
            (txids if name == TXIDS else kinds).append(
                TableWrite(tables[name], state.partition, records))
    return kinds, txids


def stage_records(write: TableWrite) -> None:
    """Hand one flush's records of a table partition to its store, for its next write.

    The changelog gets the same records from the caller; the store (app/table_store.py)
    writes them to RocksDB in one batch now and then, the latest per key. Faust's
    ``table[key] = value`` would queue one message per record in its send buffer, which
    one task drains one by one.
    """
    write.table.data.stage(write.partition, write.records)


def load_partition(tables: Mapping[str, Any], state: PartitionState,
                   on_corrupt: OnCorrupt | None = None) -> int:
    """Fill ``state`` from the tables' RocksDB databases for its partition; count records.

    A record txstream did not write (or a damaged one) is skipped and passed to
    ``on_corrupt`` with its table and key: it can never stop a partition from loading.
    """
    loaded = 0
    # Loading creates a partition's state at once, hundreds of thousands of objects with
    # no reference cycles; the cyclic collector would scan them again every time the
    # heap grew by a quarter (a fifth of the load time at 100k customers).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for name, table_state in state.tables.items():
            store = tables[name].data
            db = store._db_for_partition(state.partition)
            offset_key = store.offset_key
            for key, value in db.items():  # raw mode: already bytes
                if key == offset_key or value is None:
                    continue
                try:
                    table_state.load(key, value)
                except CorruptRecord as exc:
                    if on_corrupt is not None:
                        on_corrupt(name, bytes(key), str(exc))
                    continue
                loaded += 1
            table_state.finish_load()
    finally:
        if collecting:
            gc.enable()
    return loaded
