"""TxIdState: the tx_ids a partition has applied within the duplicate horizon, and the check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .outputs import DuplicateConflict, Outputs, TransactionLike
from .schedule import DueQueue
from .tablestate import META_KEY, TableState
from .validate import CorruptRecord, require
from .watermark import NO_WATERMARK
from .windows import WindowConfig

__all__ = ["SEGMENT_PREFIX", "SEGMENT_SIZE", "TXIDS", "TxIdState", "entry_fields"]

#: The table's name (and its changelog's: ``{app id}-txids-changelog``).
TXIDS = "txids"
#: Keys of segment records: ``s:`` + a sequence number (never the partition record's key).
SEGMENT_PREFIX = b"s:"
#: Most tx_ids in one segment record: ~400 kB with 128-character tx_ids, under Kafka's
#: default 1 MB record limit.
SEGMENT_SIZE = 2048

#: A batch of source records in offset order; ``None`` marks an invalid record.
Records = Sequence[tuple[int, TransactionLike | None]]

# An entry is one applied record packed into one int, ``offset << 192 | customer_id << 128
# | event_time_ms << 64 | amount_cents`` (every field a non-negative int below 2**64, as
# validated input is): a tuple of four ints took three times the memory, and the entries
# of the whole horizon are held. The low 192 bits are the content: one comparison.
_MASK = (1 << 64) - 1
_CONTENT = (1 << 192) - 1

# What the check decides about a record.
_PASS, _DUPLICATE, _CONFLICT = 0, 1, 2

#: A segment in the release schedule: its sequence number (None: never written) and tx_ids.
_Segment = tuple[int | None, list[str]]


def entry_fields(entry: int) -> tuple[int, int, int, int]:
    """``(offset, customer_id, event_time_ms, amount_cents)`` of a packed entry."""
    return entry >> 192, entry >> 128 & _MASK, entry >> 64 & _MASK, entry & _MASK


def _event_time(entry: int) -> int:
    return entry >> 64 & _MASK


class TxIdState(TableState):
    """The duplicate check of one partition: each tx_id applied within the horizon.

    Rule, per record in offset order (see :meth:`apply_batch`): a record whose tx_id an
    earlier offset applied, while that entry is within the horizon, is a duplicate:
    skipped and counted if its content (customer, amount, event time) is the same,
    dead-lettered as a conflict if not. An entry is within the horizon while its event
    time + horizon is after the watermark. A record older than the horizon itself is not
    looked up: it is late for every window (the horizon is at least the largest window),
    so it can change none. A record whose tx_id was applied at its own offset is the same
    record re-delivered after a crash, not a duplicate.

    Persisted like a window kind, with a partition record (offset, watermark, counters
    ``duplicates`` and ``conflicts``), but the entries go in *segments*: each flush writes
    the tx_ids applied since the previous one as records ``s:<n>`` of up to
    :data:`SEGMENT_SIZE` entries, and deletes a segment once every entry in it has
    expired. One record per tx_id cost a record and a RocksDB write per event; one per
    customer would rewrite a customer's whole horizon at every flush. The table is
    written after every window kind's records of a flush are acknowledged, so its
    partition record never names an offset a window kind's does not cover: a re-delivered
    record it has taken into account is skipped by every kind.
    """

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self.horizon = config.duplicate_horizon_ms
        #: The newest entry of each remembered tx_id.
        self.seen: dict[str, int] = {}
        #: Older entries of a tx_id applied again after its entry expired, newest first;
        #: kept until they may leave, so a restart decides as the first run did (rare).
        self.older: dict[str, list[int]] = {}
        #: tx_ids applied (or to be written again) since the last flush: the next segment.
        self.unwritten: list[str] = []
        #: Written segments, due when every entry in them has expired.
        self._segments: DueQueue[_Segment] = DueQueue()
        self._next_segment = 0
        #: Entries expired by this watermark may leave: the watermark of the last partition
        #: record written. Leaving later than they expire keeps any record written with a
        #: flush cut short free of entries a restart re-processing after that partition
        #: record still needs (they had not expired then).
        self._releasable = NO_WATERMARK

    @property
    def remembered(self) -> int:
        """tx_ids held now."""
        return len(self.seen)

    # -- processing ---------------------------------------------------------------------

    def apply_batch(self, records: Records, out: Outputs) -> Records:
        """Check a batch in offset order; return the records the window kinds are to get.

        That is ``records`` itself when none is a duplicate (the common case), else a copy
        without the duplicates and with ``None`` in place of each conflict (a dead letter,
        also put in ``out.conflicts``). A record at or before this table's offset was
        taken into account before a restart: it passes unchecked (every kind skips it).
        """
        seen, unwritten = self.seen, self.unwritten.append
        watermark = self.watermark
        lateness, max_event, value = watermark.lateness_ms, watermark.max_event_ms, watermark.value
        horizon = self.horizon
        applied = self.offset
        kept: list[tuple[int, TransactionLike | None]] | None = None
        for record in records:
            offset, tx = record
            if tx is None or offset <= applied:
                if kept is not None:
                    kept.append(record)
                continue
            t = tx.event_time_ms
            if t + horizon > value:
                tx_id = tx.tx_id
                entry = seen.get(tx_id)
                if entry is None:
                    seen[tx_id] = offset << 192 | tx.customer_id << 128 | t << 64 | tx.amount_cents
                    unwritten(tx_id)
                else:
                    watermark.value = value
                    verdict = self._check(offset, tx, out)
                    if verdict != _PASS:
                        if kept is None:
                            kept = list(records[:records.index(record)])
                        if verdict == _CONFLICT:
                            kept.append((offset, None))
                        continue  # not seen by the kinds, so not by this watermark either
            if t > max_event:
                max_event = t
                if t - lateness > value:
                    value = t - lateness
            if kept is not None:
                kept.append(record)
        watermark.max_event_ms, watermark.value = max_event, value
        if records:
            self.skip_to(records[-1][0])
        return records if kept is None else kept

    def _check(self, offset: int, tx: TransactionLike, out: Outputs) -> int:
        """Decide about a record whose tx_id has an entry; count and remember (rare)."""
        tx_id = tx.tx_id
        older = self.older.get(tx_id)
        chain = [self.seen[tx_id], *older] if older else [self.seen[tx_id]]
        current = None
        for entry in chain:  # newest first
            applied_at = entry >> 192
            if applied_at == offset:
                # This very record applied it: re-delivered after a flush cut short, its
                # entry written but not the partition record. Written again, so the
                # changelog catches up with the local store.
                self.unwritten.append(tx_id)
                return _PASS
            if applied_at < offset:
                current = entry  # the entry this record met when it first arrived
                break
        content = tx.customer_id << 128 | tx.event_time_ms << 64 | tx.amount_cents
        if current is not None and _event_time(current) + self.horizon > self.watermark.value:
            if current & _CONTENT == content:
                self._count("duplicates")
                return _DUPLICATE
            self._count("conflicts")
            applied_at, customer_id, event_time_ms, amount_cents = entry_fields(current)
            out.conflicts.append(DuplicateConflict(
                offset, tx, earlier_offset=applied_at, earlier_customer_id=customer_id,
                earlier_amount_cents=amount_cents, earlier_event_time_ms=event_time_ms))
            return _CONFLICT
        # The earlier entry expired: this is a new application of the tx_id. The expired
        # entry stays (as older) until its segment leaves.
        chain.append(offset << 192 | content)
        chain.sort(reverse=True)  # by offset: the highest field
        self._set_chain(tx_id, chain)
        self.unwritten.append(tx_id)
        return _PASS

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
        self._meta_dirty = True

    def _set_chain(self, tx_id: str, chain: list[int]) -> None:
        """Hold ``chain`` (newest first) as the tx_id's entries; none: forget it."""
        if not chain:
            del self.seen[tx_id]
            self.older.pop(tx_id, None)
            return
        self.seen[tx_id] = chain[0]
        if len(chain) > 1:
            self.older[tx_id] = chain[1:]
        else:
            self.older.pop(tx_id, None)

    def advance(self, wall_ms: int | None, out: Outputs) -> None:
        """Follow the wall clock when idle (expired entries leave at the next flush)."""
        self._on_idle(wall_ms)

    def _release(self, tx_ids: list[str], watermark: int) -> None:
        """Forget the entries of ``tx_ids`` that expired by ``watermark``."""
        seen, older, horizon = self.seen, self.older, self.horizon
        for tx_id in tx_ids:
            entry = seen.get(tx_id)
            if entry is None:
                continue  # left with another segment
            if tx_id in older:
                self._release_chain(tx_id, entry, watermark)
            elif _event_time(entry) + horizon <= watermark:
                del seen[tx_id]

    def _release_chain(self, tx_id: str, entry: int, watermark: int) -> None:
        """Forget the expired ones of a tx_id's entries, ``entry`` (the newest) and older."""
        older = self.older[tx_id]
        chain = [e for e in (entry, *older) if _event_time(e) + self.horizon > watermark]
        if len(chain) != 1 + len(older):
            self._set_chain(tx_id, chain)

    def release_memory(self) -> None:
        """For a state that is never written (the batch report): forget expired entries now."""
        if self.unwritten:
            self._schedule(None, self.unwritten)
            self.unwritten = []
        bound = self.watermark.value
        for _, bucket in self._segments.pop_buckets(bound):
            for _, tx_ids in bucket:
                self._release(tx_ids, bound)

    def _schedule(self, seq: int | None, tx_ids: list[str]) -> None:
        # Every entry applied so far expires by then: none has a later event time.
        self._segments.push(self.watermark.max_event_ms + self.horizon, (seq, tx_ids))

    # -- state records ----------------------------------------------------------------

    def dump_dirty(self) -> list[tuple[bytes, bytes | None]]:
        """New segments, deletions of expired ones (``None``), then the partition record.

        A segment leaves once every entry in it expired by the watermark of the previous
        partition record.
        """
        records: list[tuple[bytes, bytes | None]] = []
        unwritten, self.unwritten = self.unwritten, []
        for start in range(0, len(unwritten), SEGMENT_SIZE):
            tx_ids = unwritten[start:start + SEGMENT_SIZE]
            seq = self._next_segment
            self._next_segment += 1
            self._schedule(seq, tx_ids)
            records.append((SEGMENT_PREFIX + b"%d" % seq, self._segment_record(tx_ids)))
        releasable = self._releasable
        for _, bucket in self._segments.pop_buckets(releasable):
            for written, tx_ids in bucket:
                if written is not None:
                    records.append((SEGMENT_PREFIX + b"%d" % written, None))
                self._release(tx_ids, releasable)
        if records or self._meta_dirty:
            records.append((META_KEY, orjson.dumps(self._dump_meta())))
            self._meta_dirty = False
            self._releasable = self.watermark.value
        return records

    def _segment_record(self, tx_ids: list[str]) -> bytes:
        """``[[tx_id, "0x<entry>"], ...]`` of ``tx_ids``: hex text, as JSON numbers stop at
        64 bits. A tx_id written twice (rare) is taken once on load."""
        get = self.seen.__getitem__
        return orjson.dumps(list(zip(tx_ids, map(hex, map(get, tx_ids)), strict=True)))

    def load(self, key: bytes, value: bytes) -> None:
        """Restore one record written by :meth:`dump_dirty` (call :meth:`finish_load` after).

        A record txstream did not write (or a damaged one) raises :class:`CorruptRecord`
        and changes nothing: everything is checked before anything is taken.
        """
        try:
            data: Any = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise CorruptRecord("not JSON") from None
        if key == META_KEY:
            require(type(data) is dict, "not a JSON object")
            self._load_meta(data)
            return
        number = key.removeprefix(SEGMENT_PREFIX)
        require(key.startswith(SEGMENT_PREFIX) and number.isdigit(), "not a segment's key")
        require(type(data) is list, "not a list of entries")
        entries: list[tuple[str, int]] = []
        for item in data:
            require(type(item) is list and len(item) == 2 and type(item[0]) is str
                    and type(item[1]) is str, "an entry is not [tx_id, hex]")
            try:
                entry = int(item[1], 16)
            except ValueError:
                raise CorruptRecord("an entry's value is not hexadecimal") from None
            require(0 <= entry < 1 << 256, "an entry's value is out of range")
            entries.append((item[0], entry))
        seq = int(number)
        tx_ids = []
        latest = NO_WATERMARK
        for tx_id, entry in entries:
            self._merge(tx_id, entry)
            tx_ids.append(tx_id)
            latest = max(latest, _event_time(entry))
        self._segments.push(latest + self.horizon, (seq, tx_ids))
        self._next_segment = max(self._next_segment, seq + 1)

    def _merge(self, tx_id: str, entry: int) -> None:
        """Add a loaded entry to its tx_id's entries (segments may repeat one)."""
        head = self.seen.get(tx_id)
        if head is None:
            self.seen[tx_id] = entry
            return
        chain = [head, *self.older.get(tx_id, ())]
        if entry not in chain:
            chain.append(entry)
            chain.sort(reverse=True)
            self._set_chain(tx_id, chain)

    def finish_load(self) -> None:
        """Entries may leave from the loaded watermark on (the schedule is built by load)."""
        self._releasable = self.watermark.value
