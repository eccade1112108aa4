"""TableStore: Faust's RocksDB store writing without a write-ahead log, flushed as it stops.

Every record a table partition's database holds is also on its changelog, so the
write-ahead log only ever saved a replay. It cost a tenth of the worker's time at steady
state (each flush wrote tens of megabytes through it; README, Performance). Without it,
a killed worker loses what the databases still held in memory, and nothing else: RocksDB
then opens each database as it was at its last memtable flush, a prefix of its writes.
Every write, txstream's batches, Faust's persisted-offset key and the bulk restore's
batches alike, goes through the database's default write options, so the offset key
never survives the records it covers, and recovery replays the changelog from there.
A worker that stops, or gives a partition up, flushes the databases first: a plain
restart replays nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP, CollectionT
from rocksdict import WriteOptions

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
    """Faust's RocksDB store whose databases write without a write-ahead log."""

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        # The default for every write through this handle: put, delete and write(batch).
        db.set_write_options(_without_wal())
        return db

    def revoke_partitions(self, table: CollectionT, tps: set[TP]) -> None:
        """Flush the databases of partitions leaving this worker, then let Faust drop them."""
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._flush_partition(tp.partition)
        super().revoke_partitions(table, tps)

    async def stop(self) -> None:
        """Flush every open database before Faust drops them."""
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
