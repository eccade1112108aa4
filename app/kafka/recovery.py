"""Bulk changelog recovery: a fetch's changelog records go to RocksDB in one write batch.

Faust's recovery turns every changelog record into an event (message, conductor, queue,
``Recovery._slurp_changelogs``): about 100 us per record here, so a restart replayed
~10,000 records/s. The consumer (:class:`~app.kafka.transport.BatchingConsumer`) takes a
fetch's changelog records out before any of that and hands them, one partition's batch at
a time, to :class:`BulkRecovery`, which writes them as Faust's store would (one RocksDB
write batch per partition, Faust's persisted-offset key in the same batch) and keeps the
books ``_slurp_changelogs`` keeps. Faust's assignment, standby logic, highwaters,
seeking, pausing and readiness stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import monotonic
from typing import Any

from faust.stores.rocksdb import Store as RocksStore
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP
from rocksdict import WriteBatch

__all__ = ["BulkRecovery", "BulkTableManager"]

logger = logging.getLogger(__name__)


class BulkRecovery(Recovery):
    """Faust's recovery, with changelog records applied a fetch's batch at a time."""

    #: Changelog records written by the bulk path, active and standby, since start.
    bulk_records = 0
    #: Active changelog records written since the current recovery started, and when.
    _restored = 0
    _restored_since = 0.0

    def _set_recovery_started(self) -> None:
        super()._set_recovery_started()
        self._restored, self._restored_since = 0, monotonic()

    def bulk_table(self, tp: TP) -> Any:
        """The table whose changelog partition ``tp`` is being read, or None.

        None when the partition is neither recovering nor a standby (its records are
        dropped, as Faust drops them), or when the table needs Faust's per-event path
        (a changelog callback or a store other than RocksDB); see :meth:`takes`.
        """
        table = self.tp_to_table.get(tp)
        if table is None or not (tp in self.active_tps or tp in self.standby_tps):
            return None
        return table

    @staticmethod
    def takes(table: Any) -> bool:
        """Whether the bulk path can write this table's changelog records."""
        return table._on_changelog_event is None and isinstance(table.data, RocksStore)

    def apply_records(self, tp: TP, table: Any, records: Sequence[Any]) -> int:
        """Write one partition's fetched changelog records; returns how many were new.

        What ``_slurp_changelogs`` and ``Store.apply_changelog_batch`` do for each record,
        once per batch: records at or below the offset already applied are skipped
        (Faust seeks to the persisted offset itself, so its record comes again), the rest
        go to RocksDB in order with the last offset as the persisted offset, atomically.
        """
        now = monotonic()
        if tp in self.active_tps:
            offsets = self.active_offsets
            self._active_events_received_at[tp] = now
        else:
            offsets = self.standby_offsets
            self._standby_events_received_at[tp] = now
        seen = offsets.get(tp)
        if seen is not None and records[0].offset <= seen:
            records = [record for record in records if record.offset > seen]
            if not records:
                return 0
        if offsets is self.active_offsets:
            self._restored += len(records)
        pending = self.buffers.get(table)
        if pending:  # anything Faust's own path buffered for this table goes first
            table.apply_changelog_batch(pending)
            pending.clear()
        store = table.data
        batch = WriteBatch(raw_mode=True)
        put, delete = batch.put, batch.delete
        for record in records:
            key = record.key
            if key is None:
                # Not a table record (txstream never writes one without a key): skipped,
                # and loading the table skips anything else it cannot use.
                self._skip_keyless(tp, record.offset)
            elif record.value is None:
                delete(key)
            else:
                put(key, record.value)
        last = records[-1].offset
        batch.put(store.offset_key, str(last).encode())
        store._db_for_partition(tp.partition).write(batch)
        offsets[tp] = last
        self._last_flush_at = now
        self.bulk_records += len(records)
        return len(records)

    def _skip_keyless(self, tp: TP, offset: int) -> None:
        skipped = getattr(self.app, "skipped_records", None)
        if skipped is not None:
            skipped.skip(tp.topic, f"{tp.partition}/{offset}", "a changelog record without a key")

    def standby_behind(self) -> int:
        """Changelog records the standby tables have still to apply, as far as known.

        Faust's ``standby_remaining_total`` leaves out partitions that have applied
        nothing yet (offset -1), so a fresh standby reads as caught up before it has
        read a record; here they count from the start. The highwaters are the ends
        when the standbys started, as Faust's are.
        """
        offsets = self.standby_offsets
        return sum(max(0, highwater - offsets.get(tp, -1))
                   for tp, highwater in self.standby_highwaters.items()
                   if highwater is not None and highwater >= 0)

    def after_records(self) -> None:
        """Once per fetch, what ``_slurp_changelogs`` checks after each record.

        The end of active recovery (Faust then resumes the source partitions and says
        "Worker ready") and standbys having caught up.
        """
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            seconds = monotonic() - self._restored_since
            logger.info("restored %d changelog records in %.3f s (%.0f records/s)",
                        self._restored, seconds, self._restored / max(seconds, 1e-9))
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            self.signal_recovery_end.set()
        standby_ready = self._standbys_span is None and self.tables.standbys_ready
        if not standby_ready and not self.standby_remaining_total():
            if self._standbys_span is not None:
                self._standbys_span.finish()
                self._standbys_span = None
            self.tables.on_standbys_ready()


class BulkTableManager(TableManager):
    """Faust's table manager with :class:`BulkRecovery` (the App's ``TableManager``)."""

    async def on_start(self) -> None:
        """Register the changelog channels and start recovery, without Faust's 1 s sleep.

        Faust first sleeps a second, for tables declared while the app starts; the
        consumer waits for the tables before it subscribes, so that second was part of
        every start and restart. txstream declares every table when it builds the app
        (``build_app``), before anything starts.
        """
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> BulkRecovery:
        """The recovery service (Faust builds it here, with no setting of its own)."""
        if self._recovery is None:
            self._recovery = BulkRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        recovery = self._recovery
        assert isinstance(recovery, BulkRecovery)
        return recovery
