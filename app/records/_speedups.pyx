# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled window-result encoders: byte for byte what app/records/outputs.py's Python ones write.

The worker writes about four window results per event, and writing their JSON text in
Python was a fifth of its CPU. These functions write the same text into a C buffer. The
extension is optional: ``pip install`` builds it when a C compiler is at hand, and
app/records/outputs.py falls back to its Python encoders otherwise. Anything these functions do
not handle (an empty window, an amount or time out of their range) goes through
``fallback``, the Python encoder of one record. tests/unit/test_speedups.py checks both
agree on every kind of input.
"""

import time

from cpython.bytearray cimport PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset

cdef enum:
    BUFFER = 1024  # generous: the longest record is about 320 bytes
    FIXED_TEXT = 512  # the most text a caller may pass for a record's fixed parts

#: Ints the buffer code handles (Python ints at or beyond go to the fallback).
cdef long long MAX_INT = 10 ** 18
#: 10000-01-01T00:00:00Z: times from then on go to the fallback (four-digit years).
cdef long long MAX_TIME_MS = 253402300800000


cdef inline Py_ssize_t _digits(char* buf, Py_ssize_t pos, long long value) noexcept:
    """Decimal digits of ``0 <= value < 10**18``."""
    cdef char tmp[20]
    cdef int n = 0
    if value == 0:
        buf[pos] = 48
        return pos + 1
    while value:
        tmp[n] = <char>(48 + value % 10)
        value //= 10
        n += 1
    while n:
        n -= 1
        buf[pos] = tmp[n]
        pos += 1
    return pos


cdef inline Py_ssize_t _two(char* buf, Py_ssize_t pos, long long value) noexcept:
    buf[pos] = <char>(48 + value // 10)
    buf[pos + 1] = <char>(48 + value % 10)
    return pos + 2


cdef inline Py_ssize_t _money(char* buf, Py_ssize_t pos, long long cents) noexcept:
    """Cents as the JSON number text of the amount: 264868 -> 2648.68, 264800 -> 2648.0."""
    cdef long long part = cents % 100
    pos = _digits(buf, pos, cents // 100)
    buf[pos] = 46  # '.'
    buf[pos + 1] = <char>(48 + part // 10)
    pos += 2
    if part % 10:
        buf[pos] = <char>(48 + part % 10)
        pos += 1
    return pos


cdef inline Py_ssize_t _time(char* buf, Py_ssize_t pos, long long ms) noexcept:
    """``0 <= ms < MAX_TIME_MS`` as ISO 8601 UTC: 2026-03-12T14:23:45Z, or ...45.120Z."""
    cdef long long days = ms // 86400000
    cdef long long rest = ms % 86400000
    # Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, days >= 0).
    cdef long long z = days + 719468
    cdef long long era = z // 146097
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long year = yoe + era * 400
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    cdef long long day = doy - (153 * mp + 2) // 5 + 1
    cdef long long month = mp + 3 if mp < 10 else mp - 9
    if month <= 2:
        year += 1
    pos = _two(buf, pos, year // 100)
    pos = _two(buf, pos, year % 100)
    buf[pos] = 45
    pos = _two(buf, pos + 1, month)
    buf[pos] = 45
    pos = _two(buf, pos + 1, day)
    buf[pos] = 84  # 'T'
    pos = _two(buf, pos + 1, rest // 3600000)
    buf[pos] = 58
    pos = _two(buf, pos + 1, rest // 60000 % 60)
    buf[pos] = 58
    pos = _two(buf, pos + 1, rest // 1000 % 60)
    if rest % 1000:
        buf[pos] = 46
        buf[pos + 1] = <char>(48 + rest % 1000 // 100)
        pos = _two(buf, pos + 2, rest % 100)
    buf[pos] = 90  # 'Z'
    return pos + 1


cdef inline Py_ssize_t _text(char* buf, Py_ssize_t pos, bytes text) noexcept:
    cdef Py_ssize_t n = len(text)
    memcpy(buf + pos, <const char*>text, n)
    return pos + n


cdef inline Py_ssize_t _amounts(char* buf, Py_ssize_t pos, long long count, long long total,
                                long long low, long long high) noexcept:
    """``count,"total":..,"min":..,"max":..,"average":..}`` (half-even average)."""
    cdef long long average = total // count
    cdef long long twice = 2 * (total % count)
    if twice > count or (twice == count and average % 2):
        average += 1
    pos = _digits(buf, pos, count)
    memcpy(buf + pos, b',"total":', 9)
    pos = _money(buf, pos + 9, total)
    memcpy(buf + pos, b',"min":', 7)
    pos = _money(buf, pos + 7, low)
    memcpy(buf + pos, b',"max":', 7)
    pos = _money(buf, pos + 7, high)
    memcpy(buf + pos, b',"average":', 11)
    pos = _money(buf, pos + 11, average)
    buf[pos] = 125  # '}'
    return pos + 1


cdef inline Py_ssize_t _span(char* buf, Py_ssize_t pos, long long start,
                             long long end) noexcept:
    """``,"start":"<time>","end":"<time>","count":`` (sliding windows' and sessions')."""
    memcpy(buf + pos, b',"start":"', 10)
    pos = _time(buf, pos + 10, start)
    memcpy(buf + pos, b'","end":"', 9)
    pos = _time(buf, pos + 9, end)
    memcpy(buf + pos, b'","count":', 10)
    return pos + 10


cdef inline bint _in_range(object value) noexcept:
    return type(value) is int and 0 <= value < MAX_INT


# -- where records go: a list of tuples, or a Kafka record batch being built ------------------

cdef class RecordSink:
    """Takes encoded records; ``put`` answers False when it is full (a record batch).

    A value length of -1 is a null value (a tombstone).
    """

    cdef readonly Py_ssize_t count

    cdef bint put(self, const char* key, Py_ssize_t key_length, const char* value,
                  Py_ssize_t value_length, long long timestamp_ms) except -1:
        raise NotImplementedError

    cdef bint put_record(self, tuple record) except -1:
        """Put a ``(key, value, timestamp)`` tuple of bytes (a fallback encoder's)."""
        key, value, timestamp = record
        return self.put(<const char*>(<bytes>key), len(<bytes>key),
                        <const char*>(<bytes>value), len(<bytes>value), timestamp)


cdef class RecordList(RecordSink):
    """Collects ``(key, value, timestamp)`` tuples: what the record generators yield."""

    cdef readonly list records

    def __init__(self):
        self.records = []

    cdef bint put(self, const char* key, Py_ssize_t key_length, const char* value,
                  Py_ssize_t value_length, long long timestamp_ms) except -1:
        self.records.append((PyBytes_FromStringAndSize(key, key_length),
                             PyBytes_FromStringAndSize(value, value_length)
                             if value_length >= 0 else None, timestamp_ms))
        self.count += 1
        return True

    cdef bint put_record(self, tuple record) except -1:
        self.records.append(record)
        self.count += 1
        return True


cdef enum:
    #: Bytes of a record batch's header (magic 2) before its records.
    BATCH_HEADER = 61
    #: Where the CRC-covered part of the header starts (the attributes).
    CRC_FROM = 21


cdef inline unsigned long long _zigzag(long long value) noexcept:
    return (<unsigned long long>value << 1) ^ <unsigned long long>(value >> 63)


cdef inline Py_ssize_t _varint_size(long long value) noexcept:
    """Bytes of ``value`` as a zig-zag varint (Kafka's record fields)."""
    cdef unsigned long long z = _zigzag(value)
    cdef Py_ssize_t n = 1
    while z >= 0x80:
        z >>= 7
        n += 1
    return n


cdef inline char* _varint(char* out, long long value) noexcept:
    cdef unsigned long long z = _zigzag(value)
    while z >= 0x80:
        out[0] = <char>((z & 0x7F) | 0x80)
        out += 1
        z >>= 7
    out[0] = <char>z
    return out + 1


cdef inline void _big_endian(char* out, unsigned long long value, int width) noexcept:
    cdef int i
    for i in range(width):
        out[width - 1 - i] = <char>(value & 0xFF)
        value >>= 8


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* CRC-32C with the SSE 4.2 instruction, 8 bytes at a time (checked at run time). */
    __attribute__((target("sse4.2")))
    static uint32_t txstream_crc32c_hw(const char* data, size_t n) {
        uint64_t crc = 0xFFFFFFFFu;
        uint64_t word;
        while (n >= 8) {
            memcpy(&word, data, 8);
            crc = __builtin_ia32_crc32di(crc, word);
            data += 8;
            n -= 8;
        }
        uint32_t c = (uint32_t)crc;
        while (n--) {
            c = __builtin_ia32_crc32qi(c, (unsigned char)*data++);
        }
        return c ^ 0xFFFFFFFFu;
    }
    static int txstream_crc32c_hw_available(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("sse4.2");
    }
    #else
    static uint32_t txstream_crc32c_hw(const char* data, size_t n) { return 0; }
    static int txstream_crc32c_hw_available(void) { return 0; }
    #endif
    """
    unsigned int txstream_crc32c_hw(const char* data, size_t n)
    int txstream_crc32c_hw_available()


#: Whether the CPU computes CRC-32C (x86-64 with SSE 4.2); aiokafka's code does it if not.
cdef bint _crc_in_hardware = txstream_crc32c_hw_available()


def use_hardware_crc(bint enabled):
    """Compute CRC-32C with the CPU's instruction where it has one (True, the default), or
    always with aiokafka's code (False, to test that path); returns the previous choice."""
    global _crc_in_hardware
    previous = _crc_in_hardware
    _crc_in_hardware = enabled and txstream_crc32c_hw_available()
    return previous


cdef unsigned int _crc32c(const char* data, Py_ssize_t length) except? 0:
    """The CRC-32C of ``data[:length]``: the CPU's instruction, or aiokafka's code."""
    if _crc_in_hardware:
        return txstream_crc32c_hw(data, length)
    from aiokafka.record.util import calc_crc32c
    return calc_crc32c(PyBytes_FromStringAndSize(data, length))


def crc32c(const unsigned char[::1] data):
    """The CRC-32C of ``data``, as a record batch's checksum is computed."""
    if data.shape[0] == 0:
        return _crc32c(NULL, 0)
    return _crc32c(<const char*>&data[0], data.shape[0])


cdef class RecordBatchBuffer(RecordSink):
    """A Kafka record batch (magic 2, uncompressed) written straight from C buffers.

    What aiokafka's ``DefaultRecordBatchBuilder`` builds, byte for byte (the tests build
    both from the same records), without a bytes object, a tuple and a metadata object
    per record: the encoders below write into it directly. agents/batches.py hands it to
    the producer inside aiokafka's ``BatchBuilder``, so it answers that builder's
    ``append``, ``size``, ``build`` and ``set_producer_state``.
    """

    cdef char* data
    cdef Py_ssize_t length, capacity, limit
    cdef long long first_ms, max_ms
    cdef long long producer_id
    cdef int producer_epoch, base_sequence
    cdef bint transactional
    cdef int codec
    cdef object encode
    cdef bint compressed

    def __cinit__(self):
        self.data = NULL

    def __init__(self, Py_ssize_t limit, bint transactional=False, int codec=0, encode=None):
        """At most ``limit`` bytes, as aiokafka's ``batch_size`` (a first record always fits).

        ``codec`` (the attributes' compression bits, 1 to 4) and ``encode`` (bytes to
        compressed bytes, aiokafka's codec function) compress the records at :meth:`build`.
        """
        if codec and encode is None:
            raise ValueError(f"compression codec {codec} needs an encode function")
        self.limit = limit
        self.transactional = transactional
        self.codec = codec
        self.encode = encode
        self.producer_id = -1
        self.producer_epoch = -1
        self.base_sequence = 0
        self._reserve(BATCH_HEADER + 4096)
        memset(self.data, 0, BATCH_HEADER)
        self.length = BATCH_HEADER

    def __dealloc__(self):
        free(self.data)

    cdef int _reserve(self, Py_ssize_t needed) except -1:
        cdef Py_ssize_t capacity = self.capacity or 4096
        cdef char* grown
        if needed <= self.capacity:
            return 0
        while capacity < needed:
            capacity *= 2
        grown = <char*>realloc(self.data, capacity)
        if grown == NULL:
            raise MemoryError()
        self.data, self.capacity = grown, capacity
        return 0

    cdef bint _put(self, const char* key, Py_ssize_t key_length, const char* value,
                   Py_ssize_t value_length, long long timestamp_ms, const char* headers,
                   Py_ssize_t headers_length, Py_ssize_t header_count) except -1:
        """Append one record (a length of -1 is null); False if the batch is full."""
        cdef long long delta = timestamp_ms - self.first_ms if self.count else 0
        cdef Py_ssize_t body = (1 + _varint_size(delta) + _varint_size(self.count)
                                + _varint_size(key_length) + _varint_size(value_length)
                                + _varint_size(header_count) + headers_length)
        cdef Py_ssize_t size
        cdef char* out
        if key_length > 0:
            body += key_length
        if value_length > 0:
            body += value_length
        size = _varint_size(body) + body
        if self.count and self.length + size > self.limit:
            return False
        self._reserve(self.length + size)
        if self.count == 0:
            self.first_ms = self.max_ms = timestamp_ms
        elif timestamp_ms > self.max_ms:
            self.max_ms = timestamp_ms
        out = _varint(self.data + self.length, body)
        out[0] = 0  # attributes
        out = _varint(out + 1, delta)
        out = _varint(out, self.count)  # offset delta: the batch numbers its records
        out = _varint(out, key_length)
        if key_length > 0:
            memcpy(out, key, key_length)
            out += key_length
        out = _varint(out, value_length)
        if value_length > 0:
            memcpy(out, value, value_length)
            out += value_length
        out = _varint(out, header_count)
        if headers_length:
            memcpy(out, headers, headers_length)
            out += headers_length
        self.length = out - self.data
        self.count += 1
        return True

    cdef bint put(self, const char* key, Py_ssize_t key_length, const char* value,
                  Py_ssize_t value_length, long long timestamp_ms) except -1:
        return self._put(key, key_length, value, value_length, timestamp_ms, NULL, 0, 0)

    def append(self, long long offset, timestamp, key, value, headers):
        """``DefaultRecordBatchBuilder.append``: None if the batch is full, else True.

        ``offset`` must be the number of records already appended (the batch numbers its
        records itself); a None timestamp is the wall clock's.
        """
        cdef char prefix[10]
        cdef Py_ssize_t key_length = -1, value_length = -1
        cdef const char* key_data = NULL
        cdef const char* value_data = NULL
        cdef bytearray encoded = bytearray()
        cdef bytes key_bytes, value_bytes, header_text
        if offset != self.count:
            raise ValueError(f"offset {offset} is not the next record's ({self.count})")
        if timestamp is None:
            timestamp = int(time.time() * 1000)
        if key is not None:
            key_bytes = bytes(key)
            key_data, key_length = <const char*>key_bytes, len(key_bytes)
        if value is not None:
            value_bytes = bytes(value)
            value_data, value_length = <const char*>value_bytes, len(value_bytes)
        for header_key, header_value in headers:
            name = header_key.encode("utf-8")
            encoded += prefix[:_varint(prefix, len(name)) - prefix]
            encoded += name
            if header_value is None:
                encoded += prefix[:_varint(prefix, -1) - prefix]
            else:
                header_value = bytes(header_value)
                encoded += prefix[:_varint(prefix, len(header_value)) - prefix]
                encoded += header_value
        header_text = bytes(encoded)
        if not self._put(key_data, key_length, value_data, value_length, timestamp,
                         <const char*>header_text, len(header_text), len(headers)):
            return None
        return True

    def set_producer_state(self, long long producer_id, int producer_epoch,
                           int base_sequence):
        """What an idempotent or transactional producer sets before it sends the batch."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence

    def size(self):
        """Bytes written so far, header included."""
        return self.length

    def build(self):
        """The batch's bytes: the header filled in, CRC-32C over the attributes onward.

        With a codec, the records are compressed first, always (as aiokafka's compiled
        builder does, even when that makes them no smaller), and only at the first call:
        no record may be appended after it.
        """
        cdef char* h
        cdef bint empty = self.count == 0
        cdef int attributes = (0x10 if self.transactional else 0) | self.codec
        cdef bytes compressed
        if self.codec and not self.compressed:
            compressed = self.encode(PyBytes_FromStringAndSize(
                self.data + BATCH_HEADER, self.length - BATCH_HEADER))
            self._reserve(BATCH_HEADER + len(compressed))
            memcpy(self.data + BATCH_HEADER, <const char*>compressed, len(compressed))
            self.length = BATCH_HEADER + len(compressed)
            self.compressed = True
        h = self.data
        _big_endian(h, 0, 8)  # base offset: the broker's
        _big_endian(h + 8, <unsigned long long>(self.length - 12), 4)
        _big_endian(h + 12, <unsigned long long>-1, 4)  # partition leader epoch: none
        h[16] = 2  # magic
        _big_endian(h + 21, <unsigned long long>attributes, 2)
        _big_endian(h + 23, <unsigned long long>(0 if empty else self.count - 1), 4)
        _big_endian(h + 27, <unsigned long long>(-1 if empty else self.first_ms), 8)
        _big_endian(h + 35, <unsigned long long>(-1 if empty else self.max_ms), 8)
        _big_endian(h + 43, <unsigned long long>self.producer_id, 8)
        _big_endian(h + 51, <unsigned long long>self.producer_epoch, 2)
        _big_endian(h + 53, <unsigned long long>self.base_sequence, 4)
        _big_endian(h + 57, <unsigned long long>self.count, 4)
        _big_endian(h + 17, _crc32c(h + CRC_FROM, self.length - CRC_FROM), 4)
        return PyByteArray_FromStringAndSize(self.data, self.length)


# -- window results --------------------------------------------------------------------------

cdef inline bint _fixed_put(RecordSink out, bytes head, bytes middle, bytes bounds,
                            long long end_ms, long long customer, long long count,
                            long long total, long long low, long long high) except -1:
    """Put one fixed window whose numbers are in the C code's range."""
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef Py_ssize_t key_length = _digits(key, 0, customer)
    cdef Py_ssize_t pos = _text(buf, 0, head)
    memcpy(buf + pos, key, key_length)
    pos = _text(buf, pos + key_length, middle)
    memcpy(buf + pos, key, key_length)
    pos = _text(buf, pos + key_length, bounds)
    pos = _amounts(buf, pos, count, total, low, high)
    return out.put(key, key_length, buf, pos, end_ms)


def fixed_run_records(bytes head, bytes middle, bytes bounds, long long end_ms,
                      list windows, fallback):
    """Records of one run of fixed windows: see ``app.outputs.window_run_records``.

    Each record is ``head customer middle customer bounds count,...}``; ``windows`` holds
    ``(customer_id, entry, ...)`` with ``entry = [start, count, total, min, max, ...]``.
    """
    cdef RecordList out = RecordList()
    cdef bint direct = len(head) + len(middle) + len(bounds) <= FIXED_TEXT
    for item in windows:
        customer = item[0]
        entry = item[1]
        count, total, low, high = entry[1], entry[2], entry[3], entry[4]
        if not (direct and _in_range(customer) and _in_range(count) and _in_range(total)
                and _in_range(low) and _in_range(high)) or count == 0:
            out.put_record(fallback(item))
            continue
        _fixed_put(out, head, middle, bounds, end_ms, customer, count, total, low, high)
    return out.records


cdef inline bint _fits(long long value) noexcept:
    return 0 <= value < MAX_INT


def fixed_packed_into(bytes head, bytes middle, bytes bounds, long long end_ms,
                      const long long[::1] values, rows, fallback, RecordSink out,
                      Py_ssize_t first):
    """Put the windows of a packed run (tables/_fixedcore's ``PackedRows``) from index
    ``first`` into ``out``; the index of the first window that did not fit, or -1.

    ``values`` holds ``customer, start, count, total, min, max, flags`` per window;
    ``rows[i]`` is window ``i`` as a tuple, for ``fallback``.
    """
    cdef Py_ssize_t i, n = values.shape[0] // 7
    cdef long long customer, count, total, low, high
    cdef bint direct = len(head) + len(middle) + len(bounds) <= FIXED_TEXT
    for i in range(first, n):
        customer = values[7 * i]
        count = values[7 * i + 2]
        total = values[7 * i + 3]
        low = values[7 * i + 4]
        high = values[7 * i + 5]
        if not (direct and _fits(customer) and _fits(total) and _fits(low) and _fits(high)
                and 0 < count < MAX_INT):
            if not out.put_record(fallback(rows[i])):
                return i
        elif not _fixed_put(out, head, middle, bounds, end_ms, customer, count, total, low,
                            high):
            return i
    return -1


cdef inline bint _sliding_put(RecordSink out, bytes head, bytes kind_text, long long size,
                              long long customer, long long end, long long count,
                              long long total, long long low, long long high) except -1:
    """Put one sliding window whose numbers are in the C code's range."""
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef long long start = end - size
    cdef Py_ssize_t key_length = _digits(key, 0, customer)
    cdef Py_ssize_t pos = _text(buf, 0, head)
    memcpy(buf + pos, key, key_length)
    buf[pos + key_length] = 58  # ':'
    pos = _digits(buf, pos + key_length + 1, start)
    pos = _text(buf, pos, kind_text)
    memcpy(buf + pos, key, key_length)
    pos = _span(buf, pos + key_length, start, end)
    pos = _amounts(buf, pos, count, total, low, high)
    return out.put(key, key_length, buf, pos, end)


def sliding_rows_into(bytes head, bytes kind_text, long long size, list rows, fallback,
                      RecordSink out, Py_ssize_t first):
    """Put the windows of a sliding run from index ``first`` into ``out``; the index of the
    first one that did not fit, or -1. See ``app.outputs.window_run_records``.

    ``rows`` holds ``(customer_id, end, count, total, min, max)``; a window is
    ``(end - size, end]``. Each record is ``head customer:start kind_text customer,
    "start":..,"end":..,"count":...}``.
    """
    cdef Py_ssize_t i
    cdef bint direct = len(head) + len(kind_text) <= FIXED_TEXT and 0 <= size < MAX_INT
    for i in range(first, len(rows)):
        row = rows[i]
        customer, end, count, total, low, high = row
        if not direct or not (_in_range(customer) and _in_range(end) and _in_range(count)
                              and _in_range(total) and _in_range(low) and _in_range(high)) \
                or count == 0 or end < size or end >= MAX_TIME_MS:
            if not out.put_record(fallback(row)):
                return i
        elif not _sliding_put(out, head, kind_text, size, customer, end, count, total, low,
                              high):
            return i
    return -1


def sliding_packed_into(bytes head, bytes kind_text, long long size,
                        const long long[::1] values, rows, fallback, RecordSink out,
                        Py_ssize_t first):
    """:func:`sliding_rows_into` for a run whose rows are packed (the compiled core's
    ``PackedRows``, six integers per window); ``rows[i]`` is row ``i`` as a tuple."""
    cdef Py_ssize_t i, n = values.shape[0] // 6
    cdef long long customer, end, count, total, low, high
    cdef bint direct = len(head) + len(kind_text) <= FIXED_TEXT and 0 <= size < MAX_INT
    for i in range(first, n):
        customer, end, count = values[6 * i], values[6 * i + 1], values[6 * i + 2]
        total, low, high = values[6 * i + 3], values[6 * i + 4], values[6 * i + 5]
        if not (direct and _fits(customer) and _fits(total) and _fits(low) and _fits(high)
                and 0 < count < MAX_INT and size <= end < MAX_TIME_MS):
            if not out.put_record(fallback(rows[i])):
                return i
        elif not _sliding_put(out, head, kind_text, size, customer, end, count, total, low,
                              high):
            return i
    return -1


def session_results_into(list sessions, fallback, RecordSink out, Py_ssize_t first):
    """Put closed sessions (``SessionResult``) from index ``first`` into ``out``; the index
    of the first that did not fit, or -1. The text is app/records/outputs.py's
    ``encode_session``'s; ``fallback(session)`` writes any the C code does not handle."""
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef Py_ssize_t pos, key_length, i
    cdef long long customer, start, end, count, total, low, high, duration
    for i in range(first, len(sessions)):
        session = sessions[i]
        values = (session.customer_id, session.start_ms, session.end_ms, session.count,
                  session.total, session.min, session.max)
        if not (_in_range(values[0]) and _in_range(values[1]) and _in_range(values[2])
                and _in_range(values[3]) and _in_range(values[4]) and _in_range(values[5])
                and _in_range(values[6])) or not values[1] <= values[2] < MAX_TIME_MS:
            if not out.put_record(fallback(session)):
                return i
            continue
        customer, start, end, count, total, low, high = values
        key_length = _digits(key, 0, customer)
        memcpy(buf, b'{"session_id":"', 15)
        memcpy(buf + 15, key, key_length)
        pos = 15 + key_length
        buf[pos] = 58  # ':'
        pos = _digits(buf, pos + 1, start)
        memcpy(buf + pos, b'","customer_id":', 16)
        pos += 16
        memcpy(buf + pos, key, key_length)
        pos = _span(buf, pos + key_length, start, end)
        pos = _digits(buf, pos, count)
        memcpy(buf + pos, b',"total":', 9)
        pos = _money(buf, pos + 9, total)
        memcpy(buf + pos, b',"min":', 7)
        pos = _money(buf, pos + 7, low)
        memcpy(buf + pos, b',"max":', 7)
        pos = _money(buf, pos + 7, high)
        memcpy(buf + pos, b',"duration":', 12)
        # Seconds as a float's shortest text: 90.0, 90.5, 90.05, 90.005.
        duration = end - start
        pos = _digits(buf, pos + 12, duration // 1000)
        buf[pos] = 46  # '.'
        pos = _fraction(buf, pos + 1, duration % 1000)
        buf[pos] = 125  # '}'
        if not out.put(key, key_length, buf, pos + 1, end):
            return i
    return -1


cdef inline Py_ssize_t _fraction(char* buf, Py_ssize_t pos, long long millis) noexcept:
    """Milliseconds as the digits after a float's point: 0 -> 0, 500 -> 5, 50 -> 05."""
    if millis == 0:
        buf[pos] = 48
        return pos + 1
    buf[pos] = <char>(48 + millis // 100)
    pos += 1
    millis %= 100
    if millis:
        buf[pos] = <char>(48 + millis // 10)
        pos += 1
        if millis % 10:
            buf[pos] = <char>(48 + millis % 10)
            pos += 1
    return pos


def records_into(list records, RecordSink out, Py_ssize_t first):
    """Put ``(key, value, timestamp)`` tuples of bytes from index ``first`` into ``out``;
    the index of the first that did not fit, or -1."""
    cdef Py_ssize_t i
    for i in range(first, len(records)):
        if not out.put_record(records[i]):
            return i
    return -1


def pairs_into(list records, long long timestamp_ms, RecordSink out, Py_ssize_t first):
    """Put ``(key, value)`` byte pairs (state records; a None value deletes the key) from
    index ``first`` into ``out``, all at ``timestamp_ms``; the index of the first that did
    not fit, or -1."""
    cdef Py_ssize_t i
    cdef bytes key
    for i in range(first, len(records)):
        key, value = records[i]
        if value is None:  # a deleted key: a tombstone
            if not out.put(<const char*>key, len(key), NULL, -1, timestamp_ms):
                return i
        elif not out.put(<const char*>key, len(key), <const char*>(<bytes>value),
                         len(<bytes>value), timestamp_ms):
            return i
    return -1


# -- parsing: the common valid record --------------------------------------------------------

from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.math cimport rint, isfinite
from libc.string cimport memcmp

cdef object _loads = None
cdef object _make = None
cdef object _currency = None
cdef bytes _currency_bytes = None
cdef long long _min_event_ms = 0
cdef long long _max_event_ms = 0
cdef long long _max_amount_cents = 0
cdef long long _max_customer_id = 0
cdef Py_ssize_t _max_tx_id_length = 0


def configure_parse(loads, make, str currency, long long min_event_ms, long long max_event_ms,
                    long long max_amount_cents, long long max_customer_id,
                    Py_ssize_t max_tx_id_length):
    """Set what :func:`parse` needs from app/records/transaction.py (which calls this at import)."""
    global _loads, _make, _currency, _min_event_ms, _max_event_ms, _max_amount_cents
    global _max_customer_id, _max_tx_id_length, _currency_bytes
    _loads, _make, _currency = loads, make, currency
    # The layout _scan reads has the currency as plain ASCII between quotes.
    _currency_bytes = currency.encode() if currency.isascii() and currency.isalnum() else None
    _min_event_ms, _max_event_ms = min_event_ms, max_event_ms
    _max_amount_cents, _max_customer_id = max_amount_cents, max_customer_id
    _max_tx_id_length = max_tx_id_length


cdef inline long long _number(const char* text, Py_ssize_t length) noexcept:
    """The decimal digits of ``text[:length]``, or -1 if one is not a digit."""
    cdef long long value = 0
    cdef Py_ssize_t i
    for i in range(length):
        if not 48 <= text[i] <= 57:
            return -1
        value = value * 10 + (text[i] - 48)
    return value


cdef inline bint _leap(long long year) noexcept:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


cdef long long _iso_ms_chars(const char* text, Py_ssize_t length) noexcept:
    """Epoch ms of ``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.fffZ``; -1 otherwise."""
    cdef long long year, month, day, hour, minute, second, millis = 0, days, y, era, yoe, doy
    cdef long long mp
    if length != 20 and length != 24:
        return -1
    if (text[4] != b"-" or text[7] != b"-" or text[10] != b"T" or text[13] != b":"
            or text[16] != b":" or text[length - 1] != b"Z"):
        return -1
    year, month, day = _number(text, 4), _number(text + 5, 2), _number(text + 8, 2)
    hour, minute, second = _number(text + 11, 2), _number(text + 14, 2), _number(text + 17, 2)
    if length == 24:
        if text[19] != b".":
            return -1
        millis = _number(text + 20, 3)
    if (year < 0 or month < 1 or month > 12 or day < 1 or hour < 0 or hour > 23
            or minute < 0 or minute > 59 or second < 0 or second > 59 or millis < 0):
        return -1
    if month == 2:
        if day > (29 if _leap(year) else 28):
            return -1
    elif day > (30 if month in (4, 6, 9, 11) else 31):
        return -1
    # Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = month - 3 if month > 2 else month + 9
    doy = (153 * mp + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 24 + hour) * 60 + minute) * 60000 + second * 1000 + millis


cdef long long _iso_ms(str text) except -2:
    """:func:`_iso_ms_chars` of a str (-1 if it is not ASCII)."""
    if not text.isascii():
        return -1
    cdef bytes ascii = text.encode("ascii")
    return _iso_ms_chars(ascii, len(ascii))


cdef inline Py_ssize_t _digits_end(const char* data, Py_ssize_t n, Py_ssize_t pos) noexcept:
    """Where the run of ASCII digits from ``pos`` ends (``pos`` itself if there is none)."""
    while pos < n and 48 <= data[pos] <= 57:
        pos += 1
    return pos


cdef inline Py_ssize_t _expect(const char* data, Py_ssize_t n, Py_ssize_t pos,
                               const char* text, Py_ssize_t length) noexcept:
    """``pos + length`` if ``data[pos:]`` starts with ``text``, else -1."""
    if pos < 0 or pos + length > n or memcmp(data + pos, text, length) != 0:
        return -1
    return pos + length


cdef object _scan(bytes value, bytes key):
    """The Transaction of a record in exactly the layout txstream's producers write
    (``{"tx_id":"..","customer_id":N,"amount":N.NN,"currency":"PLN","event_time":".."}``,
    compact, printable ASCII, no escapes) when it is valid; None for anything else, which
    :func:`parse` then reads with orjson. Each accepted value is what the Python rules
    make of it (tests/unit/app/records/test_speedups.py compares them)."""
    cdef const char* data = value
    cdef Py_ssize_t n = len(value), pos, start, digits, tx_start, tx_length
    cdef long long customer, whole, cents, event_ms
    pos = _expect(data, n, 0, b'{"tx_id":"', 10)
    if pos < 0:
        return None
    start = pos
    while pos < n and 32 <= <unsigned char>data[pos] <= 126 and data[pos] != 34 \
            and data[pos] != 92:
        pos += 1
    if not 0 < pos - start <= _max_tx_id_length:
        return None
    tx_start, tx_length = start, pos - start
    pos = _expect(data, n, pos, b'","customer_id":', 16)
    if pos < 0:
        return None
    start = pos
    pos = _digits_end(data, n, pos)
    digits = pos - start
    if not 0 < digits <= 18 or data[start] == 48:  # no leading zero; 19 digits: orjson's
        return None
    customer = _number(data + start, digits)
    if not 0 < customer <= _max_customer_id or len(key) != digits \
            or memcmp(<const char*>key, data + start, digits) != 0:
        return None
    pos = _expect(data, n, pos, b',"amount":', 10)
    if pos < 0:
        return None
    start = pos
    pos = _digits_end(data, n, pos)
    digits = pos - start
    if not 0 < digits <= 9 or (data[start] == 48 and digits > 1):
        return None
    whole = _number(data + start, digits)
    if pos < n and data[pos] == 46:  # '.': a float with one or two decimals
        if pos + 1 < n and 48 <= data[pos + 1] <= 57:
            cents = whole * 100 + (data[pos + 1] - 48) * 10
            pos += 2
            if pos < n and 48 <= data[pos] <= 57:
                cents += data[pos] - 48
                pos += 1
        else:
            return None
        if not 0 < cents <= _max_amount_cents:
            return None
    elif 0 < whole <= _max_amount_cents // 100:  # an int
        cents = whole * 100
    else:
        return None
    pos = _expect(data, n, pos, b',"currency":"', 13)
    if pos < 0 or _currency_bytes is None:
        return None
    pos = _expect(data, n, pos, <const char*>_currency_bytes, len(_currency_bytes))
    pos = _expect(data, n, pos, b'","event_time":"', 16)
    if pos < 0 or (n - pos != 22 and n - pos != 26):
        return None
    if _expect(data, n, n - 2, b'"}', 2) < 0:
        return None
    event_ms = _iso_ms_chars(data + pos, n - 2 - pos)
    if not _min_event_ms <= event_ms < _max_event_ms:
        return None
    return _make(PyUnicode_DecodeASCII(data + tx_start, tx_length, NULL), customer, cents,
                 _currency, event_ms)


def decode_common(list records, long long latest_ms):
    """Each record's ``(offset, Transaction)`` where :func:`parse` takes it and its event
    time is at most ``latest_ms`` (any, if negative); ``(offset, None)`` in place of every
    other, whose index is in the second list returned, for the Python decoder to decide
    (app/records/decode.py). The loop over a fetched batch without a Python call per
    record."""
    cdef list decoded = []
    cdef list rest = []
    cdef Py_ssize_t i
    for i in range(len(records)):
        record = records[i]
        try:
            tx = parse(record.value, record.key)
        except Exception:  # the Python decoder rejects it with the reason
            tx = None
        if tx is None or (latest_ms >= 0 and tx.event_time_ms > latest_ms):
            rest.append(i)
            decoded.append((record.offset, None))
        else:
            decoded.append((record.offset, tx))
    return decoded, rest


cpdef parse(value, key):
    """The Transaction of a common valid record, or None: then app/records/transaction.py decides.

    Accepts only what ``parse_transaction``'s Python validation accepts, with the same
    result (tests/unit/test_speedups.py): a JSON object with a non-empty string tx_id, a
    positive integer customer_id whose decimal text is the key, an amount with at most
    two decimals, currency PLN and a canonical UTC event time or epoch ms in range.
    """
    cdef double amount_float, scaled
    cdef long long cents, event_ms, customer
    cdef char digits[24]
    cdef Py_ssize_t n
    if type(value) is not bytes or type(key) is not bytes:
        return None
    tx = _scan(value, key)
    if tx is not None:
        return tx
    try:
        obj = _loads(value)
    except Exception:
        return None
    if type(obj) is not dict:
        return None
    tx_id = (<dict>obj).get("tx_id")
    customer_id = (<dict>obj).get("customer_id")
    amount = (<dict>obj).get("amount")
    currency = (<dict>obj).get("currency")
    event_time = (<dict>obj).get("event_time")
    if type(tx_id) is not str or not 0 < len(<str>tx_id) <= _max_tx_id_length:
        return None
    if type(customer_id) is not int or not 0 < customer_id <= _max_customer_id:
        return None
    customer = customer_id
    if type(amount) is float:
        amount_float = amount
        if not isfinite(amount_float) or not 0 < amount_float < 1e15:
            return None
        scaled = rint(amount_float * 100.0)  # round half to even, as Python's round()
        cents = <long long>scaled
        if <double>cents / 100.0 != amount_float or cents > _max_amount_cents:
            return None
    elif type(amount) is int:
        if not 0 < amount <= _max_amount_cents // 100:
            return None
        cents = amount
        cents *= 100
    else:
        return None
    if type(currency) is not str or currency != _currency:
        return None
    if type(event_time) is str:
        event_ms = _iso_ms(<str>event_time)  # -1 if not canonical: out of range below
    elif type(event_time) is int:
        if not _min_event_ms <= event_time < _max_event_ms:  # before it becomes a C int
            return None
        event_ms = event_time
    else:
        return None
    if not _min_event_ms <= event_ms < _max_event_ms:
        return None
    n = _digits(digits, 0, customer)
    if len(<bytes>key) != n or memcmp(<const char*>(<bytes>key), digits, n) != 0:
        return None
    return _make(tx_id, customer_id, cents, _currency, event_ms)
