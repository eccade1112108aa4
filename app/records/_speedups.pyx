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


cdef inline tuple _fixed_record(bytes head, bytes middle, bytes bounds, long long end_ms,
                                long long customer, long long count, long long total,
                                long long low, long long high):
    """``(key, value, end)`` of one fixed window whose numbers are in the C code's range."""
    cdef char buf[BUFFER]
    cdef char key[24]
    cdef Py_ssize_t key_length = _digits(key, 0, customer)
    cdef Py_ssize_t pos = _text(buf, 0, head)
    memcpy(buf + pos, key, key_length)
    pos = _text(buf, pos + key_length, middle)
    memcpy(buf + pos, key, key_length)
    pos = _text(buf, pos + key_length, bounds)
    pos = _amounts(buf, pos, count, total, low, high)
    return (PyBytes_FromStringAndSize(key, key_length),
            PyBytes_FromStringAndSize(buf, pos), end_ms)


def fixed_run_records(bytes head, bytes middle, bytes bounds, long long end_ms,
                      list windows, fallback):
    """Records of one run of fixed windows: see ``app.outputs.window_run_records``.

    Each record is ``head customer middle customer bounds count,...}``; ``windows`` holds
    ``(customer_id, entry, ...)`` with ``entry = [start, count, total, min, max, ...]``.
    """
    if len(head) + len(middle) + len(bounds) > FIXED_TEXT:
        return [fallback(item) for item in windows]
    records = []
    append = records.append
    for item in windows:
        customer = item[0]
        entry = item[1]
        count, total, low, high = entry[1], entry[2], entry[3], entry[4]
        if not (_in_range(customer) and _in_range(count) and _in_range(total)
                and _in_range(low) and _in_range(high)) or count == 0:
            append(fallback(item))
            continue
        append(_fixed_record(head, middle, bounds, end_ms, customer, count, total, low,
                             high))
    return records


cdef inline bint _fits(long long value) noexcept:
    return 0 <= value < MAX_INT


def fixed_packed_records(bytes head, bytes middle, bytes bounds, long long end_ms,
                         const long long[::1] values, rows, fallback):
    """:func:`fixed_run_records` for a run whose windows are packed (tables/_fixedcore's
    ``PackedRows``): ``values`` holds ``customer, start, count, total, min, max, flags``
    per window; ``rows[i]`` is window ``i`` as a tuple, for ``fallback``."""
    cdef Py_ssize_t i, n = values.shape[0] // 7
    cdef long long customer, count, total, low, high
    if len(head) + len(middle) + len(bounds) > FIXED_TEXT:
        return [fallback(row) for row in rows]
    records = []
    append = records.append
    for i in range(n):
        customer = values[7 * i]
        count = values[7 * i + 2]
        total = values[7 * i + 3]
        low = values[7 * i + 4]
        high = values[7 * i + 5]
        if not (_fits(customer) and _fits(total) and _fits(low) and _fits(high)
                and 0 < count < MAX_INT):
            append(fallback(rows[i]))
            continue
        append(_fixed_record(head, middle, bounds, end_ms, customer, count, total, low,
                             high))
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


# -- parsing: the common valid record --------------------------------------------------------

from libc.math cimport rint, isfinite
from libc.string cimport memcmp

cdef object _loads = None
cdef object _make = None
cdef object _currency = None
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
    global _max_customer_id, _max_tx_id_length
    _loads, _make, _currency = loads, make, currency
    _min_event_ms, _max_event_ms = min_event_ms, max_event_ms
    _max_amount_cents, _max_customer_id = max_amount_cents, max_customer_id
    _max_tx_id_length = max_tx_id_length


cdef inline int _digit(str text, Py_ssize_t i) except -2:
    cdef Py_UCS4 c = text[i]
    cdef int code = <int>c
    if code < 48 or code > 57:
        return -1
    return code - 48


cdef inline long long _number(str text, Py_ssize_t start, Py_ssize_t length) except -2:
    """The decimal digits of ``text[start:start + length]``, or -1 if one is not a digit."""
    cdef long long value = 0
    cdef int digit
    cdef Py_ssize_t i
    for i in range(start, start + length):
        digit = _digit(text, i)
        if digit < 0:
            return -1
        value = value * 10 + digit
    return value


cdef inline bint _leap(long long year) noexcept:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


cdef long long _iso_ms(str text) except -2:
    """Epoch ms of ``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.fffZ``; -1 otherwise."""
    cdef Py_ssize_t length = len(text)
    cdef long long year, month, day, hour, minute, second, millis = 0, days, y, era, yoe, doy
    cdef long long mp
    if length != 20 and length != 24:
        return -1
    if (text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":"
            or text[16] != ":" or text[length - 1] != "Z"):
        return -1
    year, month, day = _number(text, 0, 4), _number(text, 5, 2), _number(text, 8, 2)
    hour, minute, second = _number(text, 11, 2), _number(text, 14, 2), _number(text, 17, 2)
    if length == 24:
        if text[19] != ".":
            return -1
        millis = _number(text, 20, 3)
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


def parse(value, key):
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
