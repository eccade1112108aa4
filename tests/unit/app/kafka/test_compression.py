"""Codec names map to Kafka's attribute ids, each with an encoder aiokafka can read back."""

from __future__ import annotations

import pytest
from aiokafka.codec import gzip_decode, lz4_decode, snappy_decode, zstd_decode
from aiokafka.record.default_records import DefaultRecordBatch

from app.kafka.compression import CODEC_NAMES, batch_compression

_THEIRS = {"none": (DefaultRecordBatch.CODEC_NONE, None),
           "gzip": (DefaultRecordBatch.CODEC_GZIP, gzip_decode),
           "snappy": (DefaultRecordBatch.CODEC_SNAPPY, snappy_decode),
           "lz4": (DefaultRecordBatch.CODEC_LZ4, lz4_decode),
           "zstd": (DefaultRecordBatch.CODEC_ZSTD, zstd_decode)}


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_each_codec_is_kafkas_and_decodes(name: str) -> None:
    codec, decode = _THEIRS[name]
    compression = batch_compression(name)
    assert (compression.name, compression.codec) == (name, codec)
    data = b'{"customer_id":7,"total":12.5}' * 100
    if decode is None:
        assert compression.encode is None
    else:
        assert compression.encode is not None
        assert decode(compression.encode(data)) == data


def test_an_unknown_codec_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown compression 'brotli': expected one of none, "
                                         "gzip, snappy, lz4, zstd"):
        batch_compression("brotli")
