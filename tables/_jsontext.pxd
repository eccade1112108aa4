# cython: language_level=3
"""Integers and arrays of integers written as JSON text, as orjson writes them.

Shared by the compiled window kinds (tables/_fixedcore.pyx, tables/_eventcore.pyx) to
write their state records straight from their C arrays (:func:`dump_records`, with a
writer per kind): a record was a dict of lists of
Python ints handed to orjson, built and freed for every changed customer at every
flush. The bytes are orjson's (tests/unit/tables/test_compiled_kinds.py compares them).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint64_t
from libcpp.string cimport string


cdef inline void put_int(string& out, int64_t value) noexcept:
    """Append ``value`` in decimal."""
    cdef char digits[20]
    cdef Py_ssize_t n = 0
    # Through an unsigned magnitude: -2**63 has no positive int64.
    cdef uint64_t magnitude = <uint64_t>value
    if value < 0:
        out.push_back(b'-')
        magnitude = (<uint64_t>0) - magnitude
    while True:
        digits[n] = <char>(48 + magnitude % 10)
        n += 1
        magnitude //= 10
        if magnitude == 0:
            break
    while n:
        n -= 1
        out.push_back(digits[n])


cdef inline void put_ints(string& out, const int64_t* values, Py_ssize_t count) noexcept:
    """Append ``[v0,v1,...]``."""
    cdef Py_ssize_t i
    out.push_back(b'[')
    for i in range(count):
        if i:
            out.push_back(b',')
        put_int(out, values[i])
    out.push_back(b']')


cdef inline bytes key_bytes(int64_t customer_id):
    """A customer's record key: its id in decimal, as ``str(customer_id).encode()``."""
    cdef string text
    put_int(text, customer_id)
    return PyBytes_FromStringAndSize(text.data(), text.size())


cdef inline bytes text_bytes(const string& text):
    return PyBytes_FromStringAndSize(text.data(), text.size())


#: Writes one customer's state (a kind's own class) as its record's JSON text; ``extra``
#: is what the kind needs besides (the fixed windows' watermark).
ctypedef void (*RecordWriter)(object state, string& text, int64_t extra) noexcept


cdef inline list dump_records(dict customers, set dirty, RecordWriter write, int64_t extra):
    """``(key, value)`` of each dirty customer's state record (ids not held are skipped)."""
    cdef list records = []
    cdef string text
    for customer in dirty:
        found = customers.get(customer)
        if found is None:
            continue
        text.clear()
        write(found, text, extra)
        records.append((key_bytes(customer), text_bytes(text)))
    return records
