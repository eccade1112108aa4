"""The compiled record batch builds what aiokafka's builder builds, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.codec import lz4_encode, snappy_encode, zstd_encode
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.batches import BATCH_BYTES, RecordBatches
from app.kafka.compression import CODEC_NAMES, batch_compression

speedups = pytest.importorskip("app.records._speedups") if not os.environ.get("CI") else None
if speedups is None:
    from app.records import _speedups as speedups

_BYTES = st.one_of(st.none(), st.binary(max_size=300), st.binary(min_size=2000, max_size=3000))
_HEADERS = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=20))),
                    max_size=3)
#: Kafka timestamps are int64: both signs, deltas of every varint length.
_TIMES = st.one_of(st.integers(-(2**40), 2**45), st.integers(1_700_000_000_000, 1_700_000_100_000))


@pytest.mark.parametrize("hardware", [True, False])
@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=5000))
def test_crc32c_is_aiokafkas(hardware: bool, data: bytes) -> None:
    """With the CPU's instruction and without it (lengths not a multiple of 8 included)."""
    previous = speedups.use_hardware_crc(hardware)
    try:
        assert speedups.crc32c(data) == calc_crc32c(data)
    finally:
        speedups.use_hardware_crc(previous)


@pytest.mark.parametrize("hardware", [True, False])
@settings(max_examples=150, deadline=None)
@given(records=st.lists(st.tuples(_BYTES, _BYTES, _TIMES, _HEADERS), max_size=30),
       limit=st.sampled_from([200, 3000, 20_000, BATCH_BYTES]),
       producer=st.tuples(st.integers(-1, 2**40), st.integers(-1, 2**15 - 1),
                          st.integers(-1, 2**31 - 1)),
       transactional=st.booleans())
def test_the_same_bytes_as_aiokafka(hardware: bool, records: list[Any], limit: int,
                                    producer: tuple[int, int, int],
                                    transactional: bool) -> None:
    """Appended the same records (until one does not fit), both build the same batch,
    checksum computed with the CPU's instruction or without."""
    previous = speedups.use_hardware_crc(hardware)
    try:
        _build_both(records, limit, producer, transactional)
    finally:
        speedups.use_hardware_crc(previous)


#: The encoders aiokafka's builder calls for each codec, at its own levels (gzip is left
#: out: its header holds the time, so two encodings a second apart differ).
_AIOKAFKA_ENCODERS = {2: snappy_encode, 3: lz4_encode, 4: zstd_encode}


@settings(max_examples=60, deadline=None)
@given(records=st.lists(st.tuples(_BYTES, _BYTES, _TIMES, _HEADERS), max_size=30),
       limit=st.sampled_from([200, 20_000, BATCH_BYTES]),
       codec=st.sampled_from(sorted(_AIOKAFKA_ENCODERS)), transactional=st.booleans())
def test_compressed_the_same_bytes_as_aiokafka(records: list[Any], limit: int, codec: int,
                                               transactional: bool) -> None:
    """With aiokafka's encoder, the same compressed batch (an empty one included)."""
    _build_both(records, limit, (-1, -1, 0), transactional, codec)


def _build_both(records: list[Any], limit: int, producer: tuple[int, int, int],
                transactional: bool, codec: int = 0) -> None:
    theirs = DefaultRecordBatchBuilder(2, codec, int(transactional), -1, -1, 0, limit)
    ours = speedups.RecordBatchBuffer(limit, transactional, codec, _AIOKAFKA_ENCODERS.get(codec))
    for offset, (key, value, timestamp, headers) in enumerate(records):
        taken = theirs.append(offset, timestamp, key, value, headers)
        assert (ours.append(offset, timestamp, key, value, headers) is None) is (taken is None)
        if taken is None:
            break
        assert ours.size() == theirs.size()
    theirs.set_producer_state(*producer)
    ours.set_producer_state(*producer)
    assert ours.build() == theirs.build()


def test_a_batch_reads_back_with_its_tombstones_and_headers() -> None:
    ours = speedups.RecordBatchBuffer(BATCH_BYTES)
    ours.append(0, 5, b"k", b"v", [("reason", b"why"), ("none", None)])
    ours.append(1, None, None, None, [])
    speedups.pairs_into([(b"a", b"1"), (b"b", None)], 7, ours, 0)
    read = [(r.offset, r.key, r.value, r.headers) for r in DefaultRecordBatch(bytes(ours.build()))]
    assert read == [(0, b"k", b"v", [("reason", b"why"), ("none", None)]),
                    (1, None, None, []), (2, b"a", b"1", []), (3, b"b", None, [])]
    with pytest.raises(ValueError, match="offset 9 is not the next record's"):
        ours.append(9, 5, b"k", b"v", [])


@pytest.mark.parametrize("name", [name for name in CODEC_NAMES if name != "none"])
def test_every_codec_compresses_and_reads_back(name: str) -> None:
    """The batch carries the codec's attribute bits and a valid checksum, is several
    times smaller than the records, and aiokafka reads them back exactly."""
    compression = batch_compression(name)
    batches = RecordBatches(producer=None, compression=compression)
    batch = batches.to("window-results", 0)
    records = [(b"%d" % n, b'{"customer_id":%d,"total":"%d.50"}' % (n, 7 * n),
                1_700_000_000_000 + n) for n in range(500)]
    batch.extend(records)
    [(topic, partition, builder, count)] = batches.take()
    assert (topic, partition, count) == ("window-results", 0, 500)
    data = bytes(builder._build())
    read = DefaultRecordBatch(data)
    assert read.compression_type == compression.codec
    assert read.validate_crc()
    assert len(data) < sum(len(key) + len(value) for key, value, _ in records) // 2
    assert [(r.offset, r.key, r.value, r.timestamp) for r in read] == [
        (n, key, value, ts) for n, (key, value, ts) in enumerate(records)]


def test_without_the_compiled_module_aiokafkas_builder_compresses() -> None:
    """A fresh interpreter in which the compiled module cannot be imported (an install
    without a C compiler): the batches are aiokafka's own, with the codec set."""
    script = """
import sys
sys.modules["app.records._speedups"] = None
from aiokafka.record.default_records import DefaultRecordBatch
from agents.batches import RecordBatches
from app.kafka.compression import batch_compression
batches = RecordBatches(None, batch_compression("zstd"))
batches.to("alerts", 1).extend([(b"k%d" % n, b'{"total":%d.5}' % n, 1000 + n) for n in range(50)])
[(_, _, builder, count)] = batches.take()
read = DefaultRecordBatch(bytes(builder._build()))
print(repr((batches.to("alerts", 1).buffer, count, read.compression_type, read.validate_crc(),
            [(r.key, r.value) for r in read])))
"""
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[4]).stdout.strip()
    assert printed == repr((None, 50, 4, True,
                            [(b"k%d" % n, b'{"total":%d.5}' % n) for n in range(50)]))


def test_building_twice_gives_the_same_batch() -> None:
    """aiokafka builds a batch once, but a second call must not compress it again."""
    ours = speedups.RecordBatchBuffer(BATCH_BYTES, False, 4, batch_compression("zstd").encode)
    ours.append(0, 5, b"k", b'{"total":1.5}' * 40, [])
    first = bytes(ours.build())
    assert bytes(ours.build()) == first
    assert [r.value for r in DefaultRecordBatch(first)] == [b'{"total":1.5}' * 40]


def test_a_codec_needs_an_encoder() -> None:
    with pytest.raises(ValueError, match="compression codec 4 needs an encode function"):
        speedups.RecordBatchBuffer(BATCH_BYTES, False, 4)


def test_writers_fill_batches_in_order_across_batch_limits() -> None:
    """A writer stops at a full batch; the rest goes into the next one, in order."""
    batches = RecordBatches(producer=None)
    batch = batches.to("window-results", 2)
    assert batch.buffer is not None
    value = b"v" * 100_000  # eight fit a 900 kB batch
    pairs = [(str(n).encode(), value + str(n).encode()) for n in range(20)]
    batch.append(b"first", b"x", 1, [])
    batch.write(lambda out, first: speedups.pairs_into(pairs, 42, out, first))
    batch.extend_pairs(pairs[:3])
    batch.set_aside()
    read = [(r.key, r.value, r.timestamp) for _, _, builder, _ in batches._ready
            for r in DefaultRecordBatch(bytes(builder._build()))]
    assert [key for key, _, _ in read] == [b"first"] + [k for k, _ in pairs] + [
        k for k, _ in pairs[:3]]
    assert [value for _, value, _ in read[1:21]] == [v for _, v in pairs]
    assert {ts for _, _, ts in read[1:21]} == {42}
    assert [count for _, _, _, count in batches._ready] == [9, 8, 7]
    assert [builder.record_count() for _, _, builder, _ in batches._ready] == [9, 8, 7]
