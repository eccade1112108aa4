# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Compiled tumbling and hopping windows: each customer's entries in one C++ deque.

tables/fixed.py's ``FixedWindowState`` keeps a window as a Python list in a dict per
customer: about six objects spread over the heap per window, and the batch loop was
bound by fetching them (a quarter of the worker's time). Here a customer's windows are
one sorted deque of six 64-bit integers each (contiguous chunks; the oldest leaves from
the front), so an event's windows are next to each other in memory; closing writes a
run's windows into one C array (:class:`PackedRows`). ``tables/compiled.py`` wires these functions into a subclass of
``FixedWindowState``; the results, records and views are the same as the Python code's
(tests/unit/tables/test_compiled_kinds.py applies both to the same events). The
extension is optional, like app/records/_speedups: without a C++ compiler the Python
code does the work.
"""

from cpython.buffer cimport PyBUF_FORMAT
from cpython.long cimport PyLong_AsLongLong
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from cython.operator cimport dereference as deref
from cpython.set cimport PySet_Add
from libc.stdint cimport int64_t
from libcpp.deque cimport deque
from libcpp.map cimport map
from libcpp.string cimport string
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from tables._jsontext cimport dump_records as write_records
from tables._jsontext cimport put_int, put_ints

from tables.outputs import Alert, WindowRun
from tables.validate import CorruptRecord

cdef struct Win:
    int64_t start
    int64_t count
    int64_t total
    int64_t lo
    int64_t hi
    int64_t flags

#: Bits of a window's flags (the same as tables/fixed.py's).
cdef int64_t ALERTED = 2
#: Values a window entry may hold: loaded records beyond this are not txstream's.
cdef object INT64_MAX = 2 ** 63 - 1
cdef object INT64_MIN = -(2 ** 63)


cdef class WindowList:
    """One customer's windows of one kind, sorted by start, and the highest offset applied.

    What ``CustomerWindows`` is to the Python code: ``windows`` gives the same mapping of
    start to ``[start, count, total, min, max, flags]`` (a copy).
    """

    cdef public int64_t offset
    #: Windows ending by then have closed even if the watermark says otherwise.
    cdef public int64_t closed_before
    cdef deque[Win] wins

    def __init__(self, int64_t offset=-1, int64_t closed_before=-(2 ** 62)):
        self.offset = offset
        self.closed_before = closed_before

    def is_closed(self, int64_t end, int64_t watermark):
        """Whether this customer's window ending at ``end`` has closed."""
        return end <= watermark or end <= self.closed_before

    cdef Py_ssize_t find(self, int64_t start) noexcept:
        """Index of the window starting at ``start``, or -1 (a binary search: closing and
        expiry look for the oldest windows, at the front)."""
        cdef Py_ssize_t lo = 0, hi = self.wins.size(), mid
        while lo < hi:
            mid = (lo + hi) // 2
            if self.wins[mid].start < start:
                lo = mid + 1
            else:
                hi = mid
        if lo < <Py_ssize_t>self.wins.size() and self.wins[lo].start == start:
            return lo
        return -1

    def entries(self):
        """Every window as ``[start, count, total, min, max, flags]``, by start."""
        cdef Win w
        return [[w.start, w.count, w.total, w.lo, w.hi, w.flags] for w in self.wins]

    @property
    def windows(self):
        """``{start: [start, count, total, min, max, flags]}`` of every window (a copy)."""
        cdef Win w
        return {w.start: [w.start, w.count, w.total, w.lo, w.hi, w.flags] for w in self.wins}

    def set_entries(self, list entries):
        """Take ``entries`` (checked ``[start, count, total, min, max, flags]`` lists,
        distinct starts) as this customer's windows; CorruptRecord if a value is out of
        the 64-bit range."""
        cdef Win w
        self.wins.clear()
        for entry in sorted(entries):
            for value in entry:
                if not INT64_MIN <= value <= INT64_MAX:
                    raise CorruptRecord("a window holds an integer out of range")
            w.start, w.count, w.total, w.lo, w.hi, w.flags = entry
            self.wins.push_back(w)

    cdef bint remove(self, int64_t start):
        cdef Py_ssize_t i
        # Windows expire oldest first: the one leaving is at the front of the deque.
        if not self.wins.empty() and self.wins.front().start == start:
            self.wins.pop_front()
            return True
        i = self.find(start)
        if i < 0:
            return False
        self.wins.erase(self.wins.begin() + i)
        return True


#: Integers per fixed window in :class:`PackedRows`.
DEF ROW = 7


cdef class PackedRows:
    """The windows of one run of results as 64-bit integers in one C array, ``width`` per
    window (declared in _fixedcore.pxd: tables/_eventcore.pyx fills them too).

    Fixed windows (``width`` 7): ``(customer, start, count, total, min, max, flags)``,
    read as ``(customer_id, entry, None)`` like a Python ``WindowRun``'s windows. Sliding
    windows (``flat``, ``width`` 6): ``(customer, end, count, total, min, max)``, read as
    that tuple, like a Python ``SlidingRun``'s rows. The integers are exposed as a
    buffer, from which the compiled encoders (app/records/_speedups.pyx) write the
    records without a Python object per window.
    """

    def __init__(self, Py_ssize_t width=ROW, bint flat=False):
        self.width = width
        self.flat = flat

    def __len__(self):
        return self.values.size() // self.width

    def __getitem__(self, Py_ssize_t index):
        cdef Py_ssize_t n = self.values.size() // self.width
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("row index out of range")
        cdef int64_t* row = &self.values[index * self.width]
        if self.flat:
            return tuple([row[i] for i in range(self.width)])
        return row[0], tuple([row[i] for i in range(1, self.width)]), None

    def __iter__(self):
        for index in range(self.values.size() // self.width):
            yield self[index]

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        self.shape[0] = self.values.size()
        self.strides[0] = sizeof(int64_t)
        buffer.buf = <void*>self.values.data()
        buffer.format = NULL
        if flags & PyBUF_FORMAT:
            buffer.format = b"q"
        buffer.internal = NULL
        buffer.itemsize = sizeof(int64_t)
        buffer.len = self.values.size() * sizeof(int64_t)
        buffer.ndim = 1
        buffer.obj = self
        buffer.readonly = 1
        buffer.shape = self.shape
        buffer.strides = self.strides
        buffer.suboffsets = NULL

    def __releasebuffer__(self, Py_buffer* buffer):
        pass


cdef struct Entry:
    PyObject* customer  # a reference owned by the Buckets
    PyObject* windows  # a WindowList, likewise


cdef class Buckets:
    """Windows due at epoch-aligned times: ``(customer id, WindowList)`` by due time.

    What ``DueQueue`` is to the Python code, in C++: scheduling a window took a Python
    int for its end, a dict lookup, a tuple and a list append, and closing took them
    apart again; here it is an append to the bucket's vector (the last one used is kept
    at hand: the windows of a batch end at a few times). Buckets are taken in due order,
    items in the order they came, as ``DueQueue`` does.
    """

    cdef map[int64_t, vector[Entry]] buckets
    cdef vector[Entry]* last
    cdef int64_t last_due

    def __cinit__(self):
        self.last = NULL

    def __dealloc__(self):
        self.clear()

    cdef void add(self, int64_t due, object customer, object windows):
        cdef Entry entry
        if self.last == NULL or self.last_due != due:
            self.last = &self.buckets[due]
            self.last_due = due
        Py_INCREF(customer)
        Py_INCREF(windows)
        entry.customer = <PyObject*>customer
        entry.windows = <PyObject*>windows
        self.last.push_back(entry)

    cdef void take(self, int64_t due, vector[Entry]& entries):
        """Append ``entries`` (their references too) at ``due``; ``entries`` is left empty."""
        cdef vector[Entry]* bucket = &self.buckets[due]
        if bucket.empty():
            bucket.swap(entries)
        else:
            bucket.insert(bucket.end(), entries.begin(), entries.end())
            entries.clear()

    def push(self, int64_t due, tuple item):
        """Schedule ``item``, ``(customer id, WindowList)``, at ``due``."""
        customer, windows = item
        self.add(due, customer, <WindowList?>windows)

    def clear(self):
        """Forget everything."""
        cdef pair[int64_t, vector[Entry]] bucket
        for bucket in self.buckets:
            for entry in bucket.second:
                Py_DECREF(<object>entry.customer)
                Py_DECREF(<object>entry.windows)
        self.buckets.clear()
        self.last = NULL

    def __len__(self):
        cdef Py_ssize_t count = 0
        cdef pair[int64_t, vector[Entry]] bucket
        for bucket in self.buckets:
            count += bucket.second.size()
        return count


def apply_batch(state, records, out, dict marks):
    """``FixedWindowState.apply_batch`` over :class:`WindowList` customers (same rules)."""
    cdef dict customers = state.customers
    cdef set dirty = state.dirty
    cdef object watermark = state.watermark
    cdef int64_t lateness = watermark.lateness_ms
    cdef int64_t max_event = watermark.max_event_ms
    cdef int64_t value = watermark.value
    cdef int64_t size = state.size, step = state.step
    cdef bint alerting = state.threshold is not None
    cdef int64_t threshold = state.threshold if alerting else 0
    cdef Buckets due = <Buckets?>state._due
    cdef list alerts = out.alerts
    cdef int64_t applied = state.offset
    cdef int64_t late_count = 0
    cdef list late_offsets = []
    cdef int64_t offset, t, cents, last_start, start, end, closed_before
    cdef Py_ssize_t i, n
    cdef WindowList windows
    cdef Win* w
    cdef Win fresh
    cdef bint late, has_marks = bool(marks)
    for offset, tx in records:
        if tx is None:
            continue
        if offset <= applied:
            if has_marks and offset in marks:
                marks[offset] = value
            continue
        customer = tx.customer_id
        found = customers.get(customer)
        if found is not None and offset <= (<WindowList>found).offset:
            applied = offset  # rare: the store was ahead of the changelog
            watermark.max_event_ms, watermark.value = max_event, value
            state._rewrite_seen(customer, tx)
            max_event, value = watermark.max_event_ms, watermark.value
            if has_marks and offset in marks:
                marks[offset] = value
            continue
        applied = offset
        if found is None:
            windows = WindowList()
            customers[customer] = windows
        else:
            windows = <WindowList>found
        windows.offset = offset
        PySet_Add(dirty, customer)
        t = tx.event_time_ms
        cents = tx.amount_cents
        late = False
        last_start = t - t % step
        if t % step < 0:  # Python's modulo for times before the epoch
            last_start -= step
        closed_before = windows.closed_before
        if closed_before < value:
            closed_before = value
        start = last_start - size + step
        while start <= last_start:
            end = start + size
            if end <= closed_before:
                late = True
                start += step
                continue
            # The array is sorted by start and new windows are the latest: search backwards.
            n = windows.wins.size()
            i = n
            while i > 0 and windows.wins[i - 1].start > start:
                i -= 1
            if i > 0 and windows.wins[i - 1].start == start:
                w = &windows.wins[i - 1]
                w.count += 1
                w.total += cents
                if cents < w.lo:
                    w.lo = cents
                elif cents > w.hi:
                    w.hi = cents
            else:
                fresh.start = start
                fresh.count = 1
                fresh.total = fresh.lo = fresh.hi = cents
                fresh.flags = 0
                windows.wins.insert(windows.wins.begin() + i, fresh)
                w = &windows.wins[i]
                due.add(end, customer, windows)
            if alerting and w.total > threshold and not w.flags & ALERTED:
                w.flags |= ALERTED
                alerts.append(Alert(customer, start, end, w.count, w.total, threshold,
                                    tx.tx_id, t))
            start += step
        if t > max_event:
            max_event = t
            if t - lateness > value:
                value = t - lateness
        if late:
            late_count += 1
            late_offsets.append(offset)
            if marks is not None:
                marks[offset] = value
        elif has_marks and offset in marks:
            marks[offset] = value
    if applied != state.offset:
        state.offset = applied
        state._meta_dirty = True
    watermark.max_event_ms, watermark.value = max_event, value
    state.late += late_count
    return late_offsets


def close(state, int64_t watermark, out):
    """``FixedWindowState._close``: results of the windows the watermark has passed, by
    bucket, and the removal of closed windows past the retention."""
    cdef str kind = state.kind
    cdef set dirty = state.dirty
    cdef list runs = out.runs
    cdef int64_t size = state.size
    cdef int64_t retention = state.config.retention_ms
    cdef Buckets due = <Buckets?>state._due
    cdef Buckets expiry = <Buckets?>state._expiry
    cdef int64_t end, start
    cdef Py_ssize_t i, k
    cdef vector[Entry]* entries
    cdef WindowList windows
    cdef Win w
    cdef PackedRows rows
    while not due.buckets.empty() and deref(due.buckets.begin()).first <= watermark:
        end = deref(due.buckets.begin()).first
        entries = &deref(due.buckets.begin()).second
        start = end - size
        rows = PackedRows()
        rows.values.reserve(entries.size() * ROW)
        for k in range(<Py_ssize_t>entries.size()):
            windows = <WindowList>deref(entries)[k].windows
            i = windows.find(start)
            if i < 0:
                continue  # not reached: a window leaves only after it has closed
            w = windows.wins[i]
            rows.values.push_back(PyLong_AsLongLong(<object>deref(entries)[k].customer))
            rows.values.push_back(w.start)
            rows.values.push_back(w.count)
            rows.values.push_back(w.total)
            rows.values.push_back(w.lo)
            rows.values.push_back(w.hi)
            rows.values.push_back(w.flags)
            PySet_Add(dirty, <object>deref(entries)[k].customer)
        runs.append(WindowRun(kind, start, end, rows))
        expiry.take(end + retention, deref(entries))  # the references go with them
        due.buckets.erase(due.buckets.begin())
        due.last = NULL
    while not expiry.buckets.empty() and deref(expiry.buckets.begin()).first <= watermark:
        start = deref(expiry.buckets.begin()).first - retention - size
        entries = &deref(expiry.buckets.begin()).second
        for k in range(<Py_ssize_t>entries.size()):
            if (<WindowList>deref(entries)[k].windows).remove(start):
                PySet_Add(dirty, <object>deref(entries)[k].customer)
            Py_DECREF(<object>deref(entries)[k].customer)
            Py_DECREF(<object>deref(entries)[k].windows)
        expiry.buckets.erase(expiry.buckets.begin())
        expiry.last = NULL


cdef void _write_windows(object state, string& text, int64_t watermark) noexcept:
    cdef WindowList windows = <WindowList>state
    cdef Py_ssize_t i
    text.append(b'{"o":')
    put_int(text, windows.offset)
    text.append(b',"w":[')
    for i in range(<Py_ssize_t>windows.wins.size()):
        if i:
            text.push_back(b',')
        # A Win is six int64 fields in the order of the record's entry.
        put_ints(text, <int64_t*>&windows.wins[i], 6)
    text.append(b'],"c":')
    put_int(text, watermark if watermark > windows.closed_before else windows.closed_before)
    text.push_back(b'}')


def dump_records(dict customers, set dirty, int64_t watermark):
    """``(key, value)`` of each dirty customer's state record, as ``orjson.dumps`` of
    ``CompiledFixedWindowState._dump`` writes it (windows by start)."""
    return write_records(customers, dirty, _write_windows, watermark)
