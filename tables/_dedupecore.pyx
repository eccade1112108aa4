# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The duplicate check's per-record loop and its segment records, compiled.

tables/dedupe.py's ``TxIdState`` packs each applied record into one 256-bit int and
writes the tx_ids of a flush as a JSON segment. In Python, the pack was six big-int
operations (an allocation each) per record and the segment a tuple and a ``hex`` text per
tx_id. Here the int is made from 32 bytes at once and the segment written from C; the
rule and the records are the same (tests/unit/tables/test_compiled_dedupe.py checks
both against the Python code). ``tables/compiled.py`` wires them into
``CompiledTxIdState``. Optional, like the other extensions.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_DelItem, PyDict_GetItemWithError, PyDict_SetDefault
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

import orjson

from tables.dedupe import entry_fields

cdef extern from "Python.h":
    object _PyLong_FromByteArray(const unsigned char* data, size_t n, int little_endian,
                                 int is_signed)
    ctypedef struct PyLongObject
    int _PyLong_AsByteArray(PyLongObject* value, unsigned char* data, size_t n,
                            int little_endian, int is_signed) except -1

#: What TxIdState._check answers for a record that passes.
cdef int PASS = 0
cdef int CONFLICT = 2
cdef object LIMIT = 2 ** 64
#: Entries at or above this are not four fields below 2**64 (or their event time may not
#: fit an int64 sum): Python's arithmetic takes them.
cdef object PACKED_LIMIT = 2 ** 255
cdef uint64_t TIME_LIMIT = 2 ** 62


cdef inline void _put64(unsigned char* out, uint64_t value) noexcept:
    cdef int i
    for i in range(8):
        out[i] = <unsigned char>(value & 0xFF)
        value >>= 8


cdef object _pack(int64_t offset, object customer, int64_t t, object cents):
    """``offset << 192 | customer << 128 | t << 64 | cents`` (fields below 2**64)."""
    cdef unsigned char data[32]
    if not (0 <= offset and 0 <= t and 0 <= customer < LIMIT and 0 <= cents < LIMIT):
        # Beyond 64 bits, as validated input never is: Python's arithmetic.
        return <object>offset << 192 | customer << 128 | <object>t << 64 | cents
    _put64(data, <uint64_t>cents)
    _put64(data + 8, <uint64_t>t)
    _put64(data + 16, <uint64_t>customer)
    _put64(data + 24, <uint64_t>offset)
    return _PyLong_FromByteArray(data, 32, 1, 0)


cdef inline uint64_t _get64(const unsigned char* data) noexcept:
    cdef uint64_t value = 0
    cdef int i
    for i in range(7, -1, -1):
        value = value << 8 | data[i]
    return value


def release(state, list tx_ids, int64_t watermark):
    """``TxIdState._release``: forget the entries of ``tx_ids`` that expired by
    ``watermark`` (a tx_id with older entries goes to ``_release_chain``, rare)."""
    cdef dict seen = state.seen
    cdef dict older = state.older
    cdef unsigned char data[32]
    cdef uint64_t t
    cdef PyObject* found
    # A sum of two values below 2**62 cannot overflow (a horizon beyond takes Python's).
    cdef bint exact = 0 <= state.horizon < TIME_LIMIT
    cdef int64_t horizon = state.horizon if exact else 0
    for tx_id in tx_ids:
        found = PyDict_GetItemWithError(seen, tx_id)
        if found == NULL:
            continue  # left with another segment
        entry = <object>found
        if older and tx_id in older:
            state._release_chain(tx_id, entry, watermark)
            continue
        if exact and 0 <= entry < PACKED_LIMIT:
            _PyLong_AsByteArray(<PyLongObject*>entry, data, 32, 1, 0)
            t = _get64(data + 8)
            if t < TIME_LIMIT:
                if <int64_t>t + horizon <= watermark:
                    PyDict_DelItem(seen, tx_id)
                continue
        if entry_fields(entry)[2] + state.horizon <= watermark:
            del seen[tx_id]


def apply_batch(state, records, out):
    """``TxIdState.apply_batch`` (same rule; a tx_id seen before goes to ``_check``)."""
    cdef dict seen = state.seen
    cdef list unwritten = state.unwritten
    watermark = state.watermark
    cdef int64_t lateness = watermark.lateness_ms
    cdef int64_t max_event = watermark.max_event_ms
    cdef int64_t value = watermark.value
    cdef int64_t horizon = state.horizon
    cdef int64_t applied = state.offset
    cdef int64_t offset, t
    cdef Py_ssize_t i, n = len(records)
    cdef list kept = None
    cdef int verdict
    for i in range(n):
        record = records[i]
        offset_object, tx = record
        if tx is None or offset_object <= applied:
            if kept is not None:
                kept.append(record)
            continue
        offset = offset_object
        t = tx.event_time_ms
        if t + horizon > value:
            tx_id = tx.tx_id
            entry = _pack(offset, tx.customer_id, t, tx.amount_cents)
            # One lookup: a tx_id seen before keeps its entry (then _check decides, rare).
            if <object>PyDict_SetDefault(seen, tx_id, entry) is entry:
                unwritten.append(tx_id)
            else:
                watermark.value = value
                verdict = state._check(offset, tx, out)
                if verdict != PASS:
                    if kept is None:
                        kept = list(records[:i])
                    if verdict == CONFLICT:
                        kept.append((offset, None))
                    continue  # not seen by the kinds, so not by this watermark either
        if t > max_event:
            max_event = t
            if t - lateness > value:
                value = t - lateness
        if kept is not None:
            kept.append(record)
    watermark.max_event_ms, watermark.value = max_event, value
    if n:
        state.skip_to(records[n - 1][0])
    return records if kept is None else kept


cdef const char* HEX = b"0123456789abcdef"


cdef inline bint _plain(const char* utf8, Py_ssize_t length) noexcept:
    """Whether JSON writes this text as it is (no quote, backslash or control character)."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(length):
        c = <unsigned char>utf8[i]
        if c < 0x20 or c == 34 or c == 92 or c == 0x7F:
            return False
    return True


def segment_record(list tx_ids, dict seen):
    """``orjson.dumps([[tx_id, hex(seen[tx_id])], ...])``: a segment's bytes."""
    cdef unsigned char entry[32]
    cdef const char* utf8
    cdef Py_ssize_t length, i, k, first, size = 2
    cdef char* out
    for tx_id in tx_ids:
        utf8 = PyUnicode_AsUTF8AndSize(tx_id, &length)
        if not _plain(utf8, length):  # JSON escapes a character: orjson writes it all
            return orjson.dumps([[tx, hex(seen[tx])] for tx in tx_ids])
        size += length + 74  # ,["tx_id","0x<up to 64 digits>"]
    cdef bytes text = PyBytes_FromStringAndSize(NULL, size)
    out = <char*>text
    out[0] = 91  # '['
    out += 1
    for k in range(len(tx_ids)):
        utf8 = PyUnicode_AsUTF8AndSize(tx_ids[k], &length)
        if k:
            out[0] = 44  # ','
            out += 1
        memcpy(out, b'["', 2)
        memcpy(out + 2, utf8, length)
        memcpy(out + 2 + length, b'","0x', 5)
        out += 7 + length
        value = seen[tx_ids[k]]
        _PyLong_AsByteArray(<PyLongObject*>value, entry, 32, 0, 0)  # big-endian
        first = 0
        while first < 31 and entry[first] == 0:
            first += 1
        if entry[first] >> 4:  # hex() writes no leading zero digit
            out[0] = HEX[entry[first] >> 4]
            out += 1
        out[0] = HEX[entry[first] & 0xF]
        out += 1
        for i in range(first + 1, 32):
            out[0] = HEX[entry[i] >> 4]
            out[1] = HEX[entry[i] & 0xF]
            out += 2
        memcpy(out, b'"]', 2)
        out += 2
    out[0] = 93  # ']'
    out += 1
    return text[:out - <char*>text]
