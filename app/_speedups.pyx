# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled window-result encoders: byte for byte what app/outputs.py's Python ones write.

The worker writes about four window results per event, and writing their JSON text in
Python was a fifth of its CPU. These functions write the same text into a C buffer. The
extension is optional: ``pip install`` builds it when a C compiler is at hand, and
app/outputs.py falls back to its Python encoders otherwise. Anything these functions do
not handle (an empty window, an amount or time out of their range) goes through
``fallback``, the Python encoder of one record. tests/unit/test_speedups.py checks both
agree on every kind of input.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memcpy

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


cdef inline bint _in_range(object value) noexcept:
    return type(value) is int and 0 <= value < MAX_INT


def fixed_run_records(bytes head, bytes middle, bytes bounds, long long end_ms,
                      list windows, fallback):
    """Records of one run of fixed windows: see ``app.outputs.window_run_records``.

    Each record is ``head customer middle customer bounds count,...}``; ``windows`` holds
    ``(customer_id, entry, ...)`` with ``entry = [start, count, total, min, max, ...]``.
    """
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef Py_ssize_t pos, key_length
    cdef long long count
    if len(head) + len(middle) + len(bounds) > FIXED_TEXT:
        return [fallback(item) for item in windows]
    records = []
    append = records.append
    for item in windows:
        customer = item[0]
        entry = item[1]
        count_value, total, low, high = entry[1], entry[2], entry[3], entry[4]
        if not (_in_range(customer) and _in_range(count_value) and _in_range(total)
                and _in_range(low) and _in_range(high)) or count_value == 0:
            append(fallback(item))
            continue
        count = count_value
        key_length = _digits(key, 0, customer)
        pos = _text(buf, 0, head)
        memcpy(buf + pos, key, key_length)
        pos = _text(buf, pos + key_length, middle)
        memcpy(buf + pos, key, key_length)
        pos = _text(buf, pos + key_length, bounds)
        pos = _amounts(buf, pos, count, total, low, high)
        append((PyBytes_FromStringAndSize(key, key_length),
                PyBytes_FromStringAndSize(buf, pos), end_ms))
    return records


def sliding_run_records(bytes head, bytes kind_text, long long size, list rows, fallback):
    """Records of one run of sliding windows: see ``app.outputs.window_run_records``.

    ``rows`` holds ``(customer_id, end, count, total, min, max)``; a window is
    ``(end - size, end]``. Each record is ``head customer:start kind_text customer,
    "start":..,"end":..,"count":...}``.
    """
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef Py_ssize_t pos, key_length
    cdef long long end, start
    if len(head) + len(kind_text) > FIXED_TEXT or not 0 <= size < MAX_INT:
        return [fallback(row) for row in rows]
    records = []
    append = records.append
    for row in rows:
        customer, end_value, count, total, low, high = row
        if not (_in_range(customer) and _in_range(end_value) and _in_range(count)
                and _in_range(total) and _in_range(low) and _in_range(high)) \
                or count == 0 or end_value < size or end_value >= MAX_TIME_MS:
            append(fallback(row))
            continue
        end = end_value
        start = end - size
        key_length = _digits(key, 0, customer)
        pos = _text(buf, 0, head)
        memcpy(buf + pos, key, key_length)
        buf[pos + key_length] = 58  # ':'
        pos = _digits(buf, pos + key_length + 1, start)
        pos = _text(buf, pos, kind_text)
        memcpy(buf + pos, key, key_length)
        pos += key_length
        memcpy(buf + pos, b',"start":"', 10)
        pos = _time(buf, pos + 10, start)
        memcpy(buf + pos, b'","end":"', 9)
        pos = _time(buf, pos + 9, end)
        memcpy(buf + pos, b'","count":', 10)
        pos = _amounts(buf, pos + 10, count, total, low, high)
        append((PyBytes_FromStringAndSize(key, key_length),
                PyBytes_FromStringAndSize(buf, pos), end))
    return records
