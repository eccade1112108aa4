"""The Faust tables that hold the core's state: load a partition, write its dirty records."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from faust.events import Event
from faust.streams import _current_event
from faust.types import AppT
from faust.types.tuples import Message

from .partition import PartitionState

__all__ = ["load_partition", "partition_context", "write_dirty"]


@contextmanager
def partition_context(app: AppT, topic: str, partition: int) -> Iterator[None]:
    """Make table writes go to ``partition`` outside a Faust stream.

    Faust picks a table record's changelog partition and RocksDB database from the current
    event; the batch path has no per-record events, so it names the partition with a
    stand-in event for the duration of the block.
    """
    message = Message(topic, partition, -1, 0.0, 0, None, None, None, None)
    event = Event(app, None, None, None, message)
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def write_dirty(app: AppT, tables: Mapping[str, Any], source_topic: str,
                state: PartitionState) -> int:
    """Write every changed customer of every kind (partition record last); count records."""
    written = 0
    with partition_context(app, source_topic, state.partition):
        for kind, kind_state in state.kinds.items():
            table = tables[kind]
            for key, value in kind_state.dump_dirty():
                table[key] = value
                written += 1
    return written


def load_partition(tables: Mapping[str, Any], state: PartitionState) -> int:
    """Fill ``state`` from the tables' RocksDB databases for its partition; count records."""
    loaded = 0
    for kind, kind_state in state.kinds.items():
        store = tables[kind].data
        db = store._db_for_partition(state.partition)
        offset_key = store.offset_key
        for key, value in db.items():
            if key == offset_key or value is None:
                continue
            kind_state.load(bytes(key), bytes(value))
            loaded += 1
        kind_state.finish_load()
    return loaded
