"""The transaction pipeline: batches from the consumer through the core to tables and topics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError
from faust.types import TP

from app.exceptions import BrokerError, TxstreamError
from app.kafka.compression import batch_compression
from app.records.decode import Decoder
from app.records.outputs import conflict_reason, dead_letter_headers
from app.settings import window_config
from tables.dedupe import TXIDS
from tables.faust_tables import TableWrite, dirty_records, load_partition, stage_records
from tables.outputs import DuplicateConflict, Outputs
from tables.partition import PartitionState

from .batches import RecordBatches, SentBatch
from .counters import OutputCounters
from .emit import append_outputs
from .throughput import Throughput

if TYPE_CHECKING:
    from app.kafka.transport import BatchingConsumer
    from app.txapp import TxApp

__all__ = ["QUIET_SECONDS", "Pipeline", "install_pipeline"]

logger = logging.getLogger(__name__)


#: The tick period, and the shortest pause of the input that counts as quiet.
QUIET_SECONDS = 0.25


def _now_ms() -> int:
    return int(time.time() * 1000)


class Pipeline:
    """Applies source batches to per-partition state and sends what the core produces.

    Order per flush, which makes a crash at any point safe (DESIGN.md): outputs are sent
    as batches are applied (conflicting duplicates to the dead-letter topic; a partition's
    batch may stay open over several while the producer still queues its last one, see
    RecordBatches.submit); at a flush every batch goes and we wait until the broker has
    them, then write each changed record once per window kind's table (partition record
    last), then, once those are acknowledged, the duplicate check's table, then release
    the offsets for Faust's committer.

    Only the first half holds up the input: the changed records are taken (all tables at
    once, as of one point in the input) and the window kinds' are staged and sent. The
    rest waits for the broker in a task of its own (:meth:`_finish_flush`) while batches
    go on being applied; the next flush starts after it, so flushes stay in order.
    The records reach RocksDB staged (app/table_store.py): every checkpoint interval,
    when a partition's state leaves memory, and at shutdown.
    """

    def __init__(self, app: TxApp) -> None:
        self.app = app
        self.config = window_config(app.settings)
        self.kinds = app.settings.window_kind_list
        self.topics = app.topic_names
        #: False with TXSTREAM_OUTPUTS=none: state only (a quiet replay).
        self.emit = app.settings.outputs != "none"
        self._compression = batch_compression(app.settings.compression)
        self.states: dict[int, PartitionState] = {}
        self.throughput = Throughput()
        self.outputs_sent = OutputCounters()
        self.decoder = Decoder(app.settings.max_event_ahead_ms)
        self._applied: dict[TP, int] = {}
        #: The outputs' batches, kept across fetches (a batch may stay open: see submit).
        self._outputs: RecordBatches | None = None
        self._pending: list[SentBatch] = []
        #: The second half of the last flush (waiting for the broker), while it runs.
        self._finishing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._flush_interval = app.settings.flush_interval_ms / 1000
        self._last_flush = time.monotonic()
        #: How often, and when last, the tables' staged records went to their databases.
        self._checkpoint_interval = app.settings.checkpoint_interval_ms / 1000
        self._last_staged_write = time.monotonic()
        #: When the last source batch arrived, and whether anything came since the flush.
        self._last_input = time.monotonic()
        self._unflushed = False
        # Fetches return at least every fetch wait while records flow: no batch for twice
        # that (and a tick) means the input has paused.
        self._quiet_after = (max(QUIET_SECONDS, 2 * app.settings.fetch_max_wait_ms / 1000)
                             if app.settings.flush_when_quiet else None)

    @property
    def consumer(self) -> BatchingConsumer:
        """The app's batching consumer."""
        return self.app.consumer  # type: ignore[return-value]

    # -- input ----------------------------------------------------------------------------

    async def on_batch(self, batch: Mapping[TP, list[Any]]) -> None:
        """Apply one fetch's records of the source topic, partition by partition."""
        if self.app.fatal_error is not None:
            return  # stopping: nothing more is applied, written or released
        try:
            await self._on_batch(batch)
        except Exception as exc:
            self._stop_on(exc)

    async def _on_batch(self, batch: Mapping[TP, list[Any]]) -> None:
        async with self._lock:
            wall = _now_ms()
            batches = self._output_batches()
            guard = self.app.guard
            for tp, records in batch.items():
                if not records:
                    continue
                state = self.state_for(tp.partition)
                if not guard.check_source_end(tp.partition, self.consumer.highwater(tp),
                                              state.applied_offset):
                    return
                parsed = self.decoder.decode(
                    records, wall, partial(self._dead_letter, batches, tp))
                out = state.apply(parsed, wall)
                if out.conflicts:
                    self._reject_conflicts(batches, tp, records, out.conflicts)
                self._send(batches, tp.partition, out)
                self._applied[tp] = records[-1].offset
                self.throughput.add(len(records))
                self._unflushed = True
            self._last_input = time.monotonic()
            self._pending.extend(await batches.submit(hold_queued=True))
            if time.monotonic() - self._last_flush >= self._flush_interval:
                await self._flush()

    async def tick(self) -> None:
        """Idle partitions move on with the wall clock; flush what is due.

        Besides every flush interval, state is flushed as soon as the input pauses (no
        batch for a tick): a caught-up worker commits at once instead of up to an interval
        later, while under load flushes stay an interval apart.
        """
        if self.app.fatal_error is not None:
            return
        try:
            await self._tick()
        except Exception as exc:
            self._stop_on(exc)

    async def _tick(self) -> None:
        async with self._lock:
            wall = _now_ms()
            batches = self._output_batches()
            for partition, state in list(self.states.items()):
                self._send(batches, partition, state.advance(wall))
            self._pending.extend(await batches.submit(hold_queued=True))
            now = time.monotonic()
            quiet = (self._unflushed and self._quiet_after is not None
                     and now - self._last_input >= self._quiet_after)
            if quiet or now - self._last_flush >= self._flush_interval:
                await self._flush()

    def state_for(self, partition: int) -> PartitionState:
        """The partition's state, loaded from its tables the first time it is needed."""
        state = self.states.get(partition)
        if state is None:
            state = PartitionState(partition, self.config, self.kinds)
            tables, skipped = self.app.state_tables, self.app.skipped_records

            def skip(kind: str, key: bytes, reason: str) -> None:
                topic = tables[kind].changelog_topic.get_topic_name()
                skipped.skip(topic, f"partition {partition}, key {key[:40]!r}", reason)

            loaded = load_partition(tables, state, skip)
            logger.info("partition %d: loaded %d state records", partition, loaded)
            self.states[partition] = state
        return state

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop in-memory state of partitions that left this worker (their tables remain).

        Their staged records go to the databases first: a partition that comes back
        loads its state from there, and Faust's recovery replays only what its
        changelog holds beyond the offset recorded with them.
        """
        for tp in tps:
            if tp.topic == self.topics.transactions:
                if self.states.pop(tp.partition, None) is not None:
                    try:
                        self._write_staged([tp.partition])
                    except Exception as exc:  # a rebalance must not crash with a trace
                        self._stop_on(exc)
                self._applied.pop(tp, None)

    def _write_staged(self, partitions: Iterable[int] | None = None) -> None:
        """Write the tables' staged records: the window kinds' first, the duplicate
        check's last, as their changelogs get them."""
        chosen = None if partitions is None else list(partitions)
        tables = self.app.state_tables
        for name in sorted(tables, key=lambda name: name == TXIDS):
            tables[name].data.write_staged(chosen)
        self._last_staged_write = time.monotonic()

    # -- output ---------------------------------------------------------------------------

    def _batches(self) -> RecordBatches:
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        return RecordBatches(producer, self._compression)

    def _output_batches(self) -> RecordBatches:
        if self._outputs is None:
            self._outputs = self._batches()
        return self._outputs

    def _send(self, batches: RecordBatches, partition: int, out: Outputs) -> None:
        if out and self.emit:
            self.outputs_sent.add(partition, out)
            append_outputs(batches, self.topics, partition, out)

    def _dead_letter(self, batches: RecordBatches, tp: TP, record: Any,
                           reason: str) -> None:
        if not self.emit:
            return
        headers = dead_letter_headers(reason, tp.topic, tp.partition, record.offset)
        batches.add(self.topics.dead_letters, tp.partition, record.key, record.value,
                          None, headers)

    def _reject_conflicts(self, batches: RecordBatches, tp: TP, records: list[Any],
                          conflicts: list[DuplicateConflict]) -> None:
        """Dead-letter each conflicting duplicate with its original bytes (rare)."""
        by_offset = {record.offset: record for record in records}
        for conflict in conflicts:
            self._dead_letter(batches, tp, by_offset[conflict.offset],
                              conflict_reason(conflict))

    # -- state ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write all changed state now and wait until the broker has it and its offsets
        are committed (used at shutdown and by tests)."""
        if self.app.fatal_error is not None:
            return
        async with self._lock:
            await self._flush()
            await self.settle()
            if self.app.fatal_error is None:
                self._write_staged(self.states)

    async def settle(self) -> None:
        """Wait for the last flush's second half, if it is still running.

        Several may wait at once (a flush, the shutdown); the half itself is shielded, so
        a waiter that is cancelled leaves it to finish.
        """
        finishing = self._finishing
        if finishing is None:
            return
        await asyncio.shield(finishing)
        if self._finishing is finishing:
            self._finishing = None

    def _stop_on(self, exc: Exception) -> None:
        """Stop the worker over an error of the pipeline: never a crash with a stack trace.

        Nothing more is written, and no source offset past the last complete flush is
        committed, so the next start processes the rest again (at-least-once).
        """
        if isinstance(exc, KafkaError):
            self.app.fail(BrokerError(
                f"the broker did not take the pipeline's records ({exc!r}); the worker stops "
                "without writing more state, and processes the input since its last flush "
                "again when it is started"))
            return
        logger.error("the pipeline failed; the worker stops without writing more state",
                     exc_info=exc)
        self.app.fail(TxstreamError(
            f"the pipeline failed ({type(exc).__name__}: {exc}); see the log for where. The "
            "worker processes the input since its last flush again when it is started"))

    async def _flush(self) -> None:
        # 0. One flush at a time, in order: the previous one's second half first.
        await self.settle()
        if self.app.fatal_error is not None:
            return  # that half failed: nothing more is written
        # 1. The outputs of everything applied so far are on the broker.
        self._pending.extend(await self._output_batches().submit())
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*(sent.future for sent in pending))
        # 2. Take each changed record once per table, as of this point in the input, and
        #    write the window kinds' to RocksDB and their changelogs, the ~partition record
        #    last (one batch per table partition keeps the order).
        assignment = self.consumer.assignment()
        source = self.topics.transactions
        kinds: list[TableWrite] = []
        txids: list[TableWrite] = []
        released: dict[TP, int] = {}
        flushed: dict[int, PartitionState] = {}
        for partition, state in self.states.items():
            tp = TP(source, partition)
            if tp not in assignment:
                continue
            first, last = dirty_records(self.app.state_tables, state)
            kinds.extend(first)
            txids.extend(last)
            flushed[partition] = state
            applied = self._applied.get(tp)
            if applied is not None:
                released[tp] = applied
        sent = await self._send_writes(kinds)
        self._last_flush = time.monotonic()
        self._unflushed = False
        # 3.-5. in a task of their own: the input goes on meanwhile.
        self._finishing = asyncio.ensure_future(
            self._finish_flush(kinds, sent, txids, released, flushed))

    async def _finish_flush(self, kinds: list[TableWrite], sent: list[SentBatch],
                            txids: list[TableWrite], released: dict[TP, int],
                            flushed: dict[int, PartitionState]) -> None:
        """The second half of a flush: once the broker has the window kinds' records, the
        duplicate check's; once it has those, release the source offsets the flush covers
        and commit. A failure stops the worker, as one in the first half does.

        A partition revoked meanwhile (its state dropped, or loaded again from its tables)
        gets neither: its tables stay at the previous complete flush, with the window
        kinds' ahead, as after a crash between the two, and its next owner starts from
        the offset committed then. Writing them could race with that owner's recovery.
        """

        def kept(partition: int) -> bool:
            return self.states.get(partition) is flushed[partition]

        try:
            # 3. The window kinds' records are on the broker.
            if not await self._confirm(kinds, sent, kept):
                return  # the broker lost a changelog: record nothing more, release nothing
            # 4. Then the duplicate check's.
            if self.app.fatal_error is not None:
                return
            txids = [write for write in txids if kept(write.partition)]
            if not await self._confirm(txids, await self._send_writes(txids), kept):
                return
            if time.monotonic() - self._last_staged_write >= self._checkpoint_interval:
                self._write_staged([partition for partition in flushed if kept(partition)])
            # 5. Release the source offsets: Faust's committer commits them.
            if self.app.fatal_error is not None:
                return
            for tp, applied in released.items():
                if kept(tp.partition):
                    self.consumer.release(tp, applied + 1)
            await self.consumer.commit()
        except Exception as exc:
            self._stop_on(exc)

    async def _send_writes(self, writes: list[TableWrite]) -> list[SentBatch]:
        """Stage table records for RocksDB and hand them to the producer for the changelogs."""
        if not writes:
            return []
        batches = self._batches()
        for write in writes:
            stage_records(write)
            batches.to(write.changelog, write.partition).extend_pairs(write.records)
        return await batches.submit()

    async def _confirm(self, writes: list[TableWrite], sent: list[SentBatch],
                       kept: Callable[[int], bool]) -> bool:
        """Return once the broker has the changelog batches ``sent`` for ``writes`` and each
        table partition still ``kept`` has noted how far its changelog covers it (written to
        RocksDB with its staged records).

        False (and the worker stopping) when the broker put a changelog's new records at
        or before the offset the local table had recorded: it lost that changelog.
        """
        # Faust's recovery of a table partition starts after the offset recorded here.
        metadata = await asyncio.gather(*(batch.future for batch in sent))
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        for batch, meta in zip(sent, metadata, strict=True):
            where = (batch.topic, batch.partition)
            first[where] = min(meta.offset, first.get(where, meta.offset))
            last[where] = max(meta.offset + batch.count - 1, last.get(where, -1))
        guard = self.app.guard
        for (topic, partition), first_offset in first.items():
            if not guard.check_changelog_growth(topic, partition, first_offset):
                return False
        for write in writes:
            offset = last.get((write.changelog, write.partition))
            if offset is not None and kept(write.partition):
                write.table.data.cover(write.partition, offset)
        return True


def install_pipeline(app: TxApp) -> Pipeline:
    """Declare the source topic's agent, plug the pipeline into the consumer, start timers."""
    pipeline = Pipeline(app)
    app.pipeline = pipeline
    source = app.topic(app.topic_names.transactions, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw",
                       partitions=app.settings.partitions)

    async def transactions(stream: Any) -> None:
        # Subscribes the consumer group to the source topic; records never reach this
        # stream because BatchingConsumer hands them to the pipeline in batches.
        async for _ in stream:
            message = "a transaction reached the per-event stream: the batch seam is not installed"
            raise RuntimeError(message)

    app.agent(source, name="transactions")(transactions)

    async def _on_revoked(*args: Any, **_: Any) -> None:
        pipeline.forget(args[-1])

    app.on_partitions_revoked.connect(_on_revoked)

    async def _tick() -> None:
        await pipeline.tick()

    app.timer(interval=QUIET_SECONDS)(_tick)

    return pipeline
