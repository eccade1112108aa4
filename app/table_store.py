"""TableStore: Faust's RocksDB store, written in batches now and then, without a write-ahead log.

Every record a table partition's database holds is also on its changelog: the database
only saves a worker the replay of that changelog when it starts. Two things follow.

- **No write-ahead log.** It cost a tenth of the worker's time at steady state (README,
  Performance). Without it, a killed worker loses what the databases held in memory,
  and nothing else: RocksDB opens each database as it was at its last memtable flush, a
  prefix of its writes. Every write goes through the handle's default write options
  (txstream's, Faust's offset key, the bulk restore's), so the offset key never
  survives the records it covers, and recovery replays the changelog from there.
- **Staged records.** Each flush's records go to the changelog at once, but only into
  memory here (:meth:`TableStore.stage`), the latest per key, with the changelog
  offset they reach (:meth:`TableStore.cover`). :meth:`TableStore.write_staged` puts
  them in the database in one batch with that offset: the pipeline calls it every
  ``TXSTREAM_CHECKPOINT_INTERVAL`` (30 s), when a partition's state leaves memory, and
  at shutdown. In a backlog a flush rewrites nearly every customer, so this writes each
  record once instead of once per flush. After a kill, recovery replays about that
  long's changelog records; a stopping worker writes and flushes everything first, so a
  plain restart replays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP, CollectionT
from rocksdict import WriteBatch, WriteOptions

__all__ = ["TABLE_STORE_URL", "TableStore"]

logger = logging.getLogger(__name__)

#: The store URL the app's tables use (registered with Faust's store registry below).
TABLE_STORE_URL = "txstream-rocksdb://"

STORES.aliases.setdefault("txstream-rocksdb", f"{__name__}:TableStore")


def _without_wal() -> WriteOptions:
    options = WriteOptions()
    # rocksdict's stub declares a method; at run time it is a property.
    options.disable_wal = True  # type: ignore[method-assign,assignment]
    return options


class TableStore(RocksStore):
    """Faust's RocksDB store with staged records and no write-ahead log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Each partition's records not yet in its database, the latest per key.
        self._staged: dict[int, dict[bytes, bytes | None]] = {}
        #: Each partition's changelog offset that its records reach, not yet recorded.
        self._covered: dict[int, int] = {}

    # -- staged records ---------------------------------------------------------------

    def stage(self, partition: int, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Keep records (``None`` deletes) for the partition's next database write."""
        staged = self._staged.get(partition)
        if staged is None:
            staged = self._staged[partition] = {}
        staged.update(records)

    def cover(self, partition: int, offset: int) -> None:
        """The partition's changelog holds everything staged so far up to ``offset``."""
        if offset > self._covered.get(partition, -1):
            self._covered[partition] = offset

    def write_staged(self, partitions: Iterable[int] | None = None) -> int:
        """Write the staged records and covered offset of ``partitions`` (default: all),
        one batch per database, atomically; returns how many records were written.

        A partition whose database this worker no longer holds has had them written
        when it left (:meth:`revoke_partitions`); anything left for it is dropped.
        """
        chosen = set(self._staged) | set(self._covered) if partitions is None else partitions
        written = 0
        for partition in list(chosen):
            staged = self._staged.pop(partition, None)
            covered = self._covered.pop(partition, None)
            db = self._dbs.get(partition)
            if db is None or (staged is None and covered is None):
                continue
            batch = WriteBatch(raw_mode=True)
            if staged:
                put, delete = batch.put, batch.delete
                for key, value in staged.items():
                    if value is None:
                        delete(key)
                    else:
                        put(key, value)
                written += len(staged)
            if covered is not None:
                batch.put(self.offset_key, str(covered).encode())
            db.write(batch)
        return written

    def persisted_offset(self, tp: TP) -> int | None:
        """How far the partition's changelog covers its records, staged ones included."""
        stored = super().persisted_offset(tp)
        covered = self._covered.get(tp.partition)
        if covered is None:
            return stored
        return covered if stored is None else max(stored, covered)

    # -- the databases ------------------------------------------------------------------

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        # The default for every write through this handle: put, delete and write(batch).
        db.set_write_options(_without_wal())
        return db

    def revoke_partitions(self, table: CollectionT, tps: set[TP]) -> None:
        """Write and flush the databases of partitions leaving this worker, then let Faust
        drop them."""
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self.write_staged([tp.partition])
                self._flush_partition(tp.partition)
        super().revoke_partitions(table, tps)

    async def stop(self) -> None:
        """Write what is staged and flush every open database before Faust drops them."""
        self.write_staged()
        for partition in list(self._dbs):
            self._flush_partition(partition)
        await super().stop()

    def _flush_partition(self, partition: int) -> None:
        db = self._dbs.get(partition)
        if db is None:
            return
        try:
            db.flush()
        except Exception as exc:  # RocksDB raises plain Exceptions
            # What was not flushed is on the changelog: the next start replays it.
            logger.warning("could not flush table %s partition %d (%r); its next start "
                           "replays the changelog from its last flush", self.table_name,
                           partition, exc)
