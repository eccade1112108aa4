# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""Compiled sliding windows and sessions: each customer's state in C arrays, schedules
in C++ heaps.

tables/sliding.py and tables/sessions.py keep a customer's events or sessions as Python
lists and their close and expiry schedules as heaps of ``due << 64 | customer`` Python
ints: an event cost heap pushes of big ints, and closing walked Python lists. Here the
same state is C arrays per customer and C++ heaps of (due, customer) pairs, popped in
the same order. ``tables/compiled.py`` wires these functions into subclasses of
``SlidingState`` and ``SessionState`` with the same results, records and views
(tests/unit/tables/test_compiled_kinds.py applies both to the same events). Optional,
like tables/_fixedcore.
"""

from cpython.set cimport PySet_Add
from libc.stdint cimport int64_t
from libcpp.pair cimport pair
from libcpp.queue cimport priority_queue
from libcpp.string cimport string
from libcpp.vector cimport vector

from tables._fixedcore cimport PackedRows
from tables._jsontext cimport dump_records, put_int, put_ints

from tables.outputs import SessionResult, SlidingRun
from tables.validate import CorruptRecord

cdef object INT64_MAX = 2 ** 63 - 1
cdef object INT64_MIN = -(2 ** 63)


cdef class TimeHeap:
    """Customer ids due at event times, popped by (due, customer), as ``TimeQueue`` does."""

    # priority_queue is a max-heap: entries are (-due, -customer).
    cdef priority_queue[pair[int64_t, int64_t]] heap

    def push(self, int64_t due, int64_t item):
        """Schedule customer ``item`` at ``due``."""
        self.heap.push(pair[int64_t, int64_t](-due, -item))

    cdef bint pop_next(self, int64_t limit, int64_t* due, int64_t* item) noexcept:
        """Remove the oldest entry into ``due`` and ``item`` if it is due by ``limit``."""
        if self.heap.empty() or -self.heap.top().first > limit:
            return False
        due[0] = -self.heap.top().first
        item[0] = -self.heap.top().second
        self.heap.pop()
        return True

    def pop_due(self, int64_t limit):
        """Remove and return ``(due, item)`` for every item with ``due <= limit``, oldest first."""
        cdef int64_t due, item
        popped = []
        while self.pop_next(limit, &due, &item):
            popped.append((due, item))
        return popped

    def clear(self):
        """Forget everything."""
        self.heap = priority_queue[pair[int64_t, int64_t]]()

    def __len__(self):
        return self.heap.size()


cdef inline Py_ssize_t _bisect_right(vector[int64_t]& values, int64_t x, Py_ssize_t lo,
                                     Py_ssize_t hi) noexcept:
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef class CustomerState:
    """What every kind keeps per customer: the highest source offset applied to it."""

    cdef public int64_t offset


cdef class EventList(CustomerState):
    """One customer's retained events sorted by time, and how far final results are done.

    What ``CustomerEvents`` is to the Python code (``times`` and ``events`` are copies).
    """

    #: Every window ending at or before this event time has had its final result.
    cdef public int64_t finalized
    cdef vector[int64_t] _times
    cdef vector[int64_t] _amounts

    def __init__(self, int64_t offset=-1, int64_t finalized=-(2 ** 62)):
        self.offset = offset
        self.finalized = finalized

    @property
    def times(self):
        return list(self._times)

    @property
    def events(self):
        """``(event_time, cents)`` of each retained event, oldest first."""
        return [(self._times[i], self._amounts[i]) for i in range(self._times.size())]

    def set_events(self, list events):
        """Take ``events`` (checked ``[time, cents]`` pairs, oldest first); CorruptRecord
        if a value is out of the 64-bit range."""
        self._times.clear()
        self._amounts.clear()
        for t, cents in events:
            if not (INT64_MIN <= t <= INT64_MAX and INT64_MIN <= cents <= INT64_MAX):
                raise CorruptRecord("an event holds an integer out of range")
            self._times.push_back(t)
            self._amounts.push_back(cents)

    def aggregate(self, int64_t after, int64_t until):
        """``(count, total, min, max)`` of the events in ``(after, until]`` (zeros if none)."""
        cdef Py_ssize_t n = self._times.size()
        cdef Py_ssize_t first = _bisect_right(self._times, after, 0, n)
        cdef Py_ssize_t last = _bisect_right(self._times, until, 0, n)
        cdef int64_t total = 0, lo = 0, hi = 0, cents
        cdef Py_ssize_t i
        if last <= first:
            return 0, 0, 0, 0
        lo = hi = self._amounts[first]
        for i in range(first, last):
            cents = self._amounts[i]
            total += cents
            if cents < lo:
                lo = cents
            if cents > hi:
                hi = cents
        return last - first, total, lo, hi


cdef bint _slide(EventList events, int64_t customer_id, int64_t t, object tx,
                 int64_t watermark, TimeHeap due, TimeHeap expiry, int64_t kept) except -1:
    """``SlidingState._apply`` of one new event; True if it was late."""
    cdef Py_ssize_t position, n
    cdef int64_t cents
    cdef bint is_new_end
    if t < watermark:
        return True
    cents = tx.amount_cents
    n = events._times.size()
    if n == 0 or t > events._times[n - 1]:
        # In order, the common case: a new last end.
        events._times.push_back(t)
        events._amounts.push_back(cents)
        is_new_end = True
    else:
        position = _bisect_right(events._times, t, 0, n)
        is_new_end = position == 0 or events._times[position - 1] != t
        events._times.insert(events._times.begin() + position, t)
        events._amounts.insert(events._amounts.begin() + position, cents)
    if is_new_end:
        due.heap.push(pair[int64_t, int64_t](-(t + 1), -customer_id))
        expiry.heap.push(pair[int64_t, int64_t](-(t + kept), -customer_id))
    return False


def sliding_apply_batch(state, records, out, dict marks):
    """``PerEventKindState.apply_batch`` with ``SlidingState._apply`` (same rules)."""
    return _apply_batch(state, records, marks, SLIDING)


def sliding_close(state, int64_t watermark, out):
    """``SlidingState._close``: a result per distinct event time the watermark has passed,
    then the events past the retention leave."""
    cdef dict customers = state.customers
    cdef int64_t size = state.size
    cdef int64_t horizon = watermark - size - state.config.retention_ms
    cdef TimeHeap due = <TimeHeap?>state._due
    cdef TimeHeap expiry = <TimeHeap?>state._expiry
    cdef set dirty = state.dirty
    # (customer, end, count, total, min, max) per window, read as that tuple.
    cdef PackedRows rows = PackedRows(6, True)
    cdef EventList events
    cdef int64_t customer_id, popped_at, end, finalized, total, lo, hi, cents
    cdef Py_ssize_t i, j, k, n, first, keep
    while due.pop_next(watermark, &popped_at, &customer_id):
        key = customer_id  # boxed once: the lookup and the dirty mark
        found = customers.get(key)
        if found is None:
            continue
        events = <EventList>found
        # Walk the events after the last final result, one window per distinct time
        # before the watermark; a customer is often due again for an end it has done.
        n = events._times.size()
        i = _bisect_right(events._times, events.finalized, 0, n)
        finalized = events.finalized
        while i < n:
            end = events._times[i]
            if end >= watermark:
                break
            j = i + 1
            while j < n and events._times[j] == end:
                j += 1
            first = _bisect_right(events._times, end - size, 0, i)
            lo = hi = events._amounts[first]
            total = 0
            for k in range(first, j):
                cents = events._amounts[k]
                total += cents
                if cents < lo:
                    lo = cents
                if cents > hi:
                    hi = cents
            rows.values.push_back(customer_id)
            rows.values.push_back(end)
            rows.values.push_back(j - first)
            rows.values.push_back(total)
            rows.values.push_back(lo)
            rows.values.push_back(hi)
            finalized = end
            i = j
        if finalized != events.finalized:
            events.finalized = finalized
            PySet_Add(dirty, key)
    if rows.values.size():
        out.runs.append(SlidingRun(state.kind, size, rows))
    while expiry.pop_next(watermark, &popped_at, &customer_id):
        key = customer_id  # boxed once: the lookup and the dirty mark
        found = customers.get(key)
        if found is None:
            continue
        events = <EventList>found
        keep = _bisect_right(events._times, horizon, 0, events._times.size())
        if keep:
            events._times.erase(events._times.begin(), events._times.begin() + keep)
            events._amounts.erase(events._amounts.begin(), events._amounts.begin() + keep)
            PySet_Add(dirty, key)


# -- sessions ---------------------------------------------------------------------------------

cdef struct Session:
    int64_t start
    int64_t last
    int64_t count
    int64_t total
    int64_t lo
    int64_t hi
    int64_t closed


cdef class SessionList(CustomerState):
    """One customer's sessions sorted by start, and the highest offset applied to them.

    What ``CustomerSessions`` is to the Python code (``sessions`` is a copy).
    """

    cdef vector[Session] _sessions

    def __init__(self, int64_t offset=-1):
        self.offset = offset

    @property
    def sessions(self):
        """``[start, last, count, total, min, max, closed]`` of each session, by start."""
        cdef Session x
        return [[x.start, x.last, x.count, x.total, x.lo, x.hi, x.closed]
                for x in self._sessions]

    def set_sessions(self, list entries):
        """Take ``entries`` (checked 7-integer lists, by start); CorruptRecord if a value is
        out of the 64-bit range."""
        cdef Session x
        self._sessions.clear()
        for entry in entries:
            for value in entry:
                if not INT64_MIN <= value <= INT64_MAX:
                    raise CorruptRecord("a session holds an integer out of range")
            x.start, x.last, x.count, x.total, x.lo, x.hi, x.closed = entry
            self._sessions.push_back(x)


cdef bint _join(SessionList sessions, int64_t customer_id, int64_t t, object tx,
                int64_t watermark, TimeHeap due, int64_t gap) except -1:
    """``SessionState._apply`` of one new event; True if it was late."""
    cdef Py_ssize_t lo, hi, i
    cdef int64_t cents
    cdef Session fresh
    cdef Session* merged
    cdef Session* other
    if t + gap <= watermark:
        return True
    # Sessions are sorted by start and their spans never overlap, so the ones this
    # event's span [t, t + gap) touches are next to each other, near the end.
    hi = sessions._sessions.size()
    while hi and sessions._sessions[hi - 1].start >= t + gap:
        hi -= 1
    lo = hi
    while lo and sessions._sessions[lo - 1].last + gap > t:
        lo -= 1
    # Closed is decided by the watermark now; a closed session is final.
    for i in range(lo, hi):
        if sessions._sessions[i].closed or sessions._sessions[i].last + gap <= watermark:
            return True
    cents = tx.amount_cents
    if lo == hi:
        fresh.start = fresh.last = t
        fresh.count = 1
        fresh.total = fresh.lo = fresh.hi = cents
        fresh.closed = 0
        sessions._sessions.insert(sessions._sessions.begin() + lo, fresh)
    else:
        merged = &sessions._sessions[lo]
        for i in range(lo + 1, hi):
            other = &sessions._sessions[i]
            if other.last > merged.last:
                merged.last = other.last
            merged.count += other.count
            merged.total += other.total
            if other.lo < merged.lo:
                merged.lo = other.lo
            if other.hi > merged.hi:
                merged.hi = other.hi
        if hi - lo > 1:
            sessions._sessions.erase(sessions._sessions.begin() + lo + 1,
                                     sessions._sessions.begin() + hi)
            merged = &sessions._sessions[lo]
        if t < merged.start:
            merged.start = t
        if t > merged.last:
            merged.last = t
        merged.count += 1
        merged.total += cents
        if cents < merged.lo:
            merged.lo = cents
        if cents > merged.hi:
            merged.hi = cents
    due.heap.push(pair[int64_t, int64_t](-(sessions._sessions[lo].last + gap), -customer_id))
    return False


def session_apply_batch(state, records, out, dict marks):
    """``PerEventKindState.apply_batch`` with ``SessionState._apply`` (same rules)."""
    return _apply_batch(state, records, marks, SESSION)


# -- the batch loop of both kinds ---------------------------------------------------------------

cdef enum Kind:
    SLIDING
    SESSION


cdef list _apply_batch(state, records, dict marks, Kind kind):
    """``PerEventKindState.apply_batch``: each new event of each customer in offset order,
    through the kind's step (:func:`_slide` or :func:`_join`)."""
    cdef dict customers = state.customers
    cdef set dirty = state.dirty
    cdef object watermark = state.watermark
    cdef int64_t lateness = watermark.lateness_ms
    cdef int64_t max_event = watermark.max_event_ms
    cdef int64_t value = watermark.value
    cdef TimeHeap due = <TimeHeap?>state._due
    cdef TimeHeap expiry = <TimeHeap?>state._expiry
    cdef int64_t kept = state._kept_ms if kind == SLIDING else 0
    cdef int64_t gap = state.gap if kind == SESSION else 0
    cdef int64_t applied = state.offset
    cdef int64_t late_count = 0
    cdef list late_offsets = []
    cdef int64_t offset, t
    cdef CustomerState customer_state
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
        if found is not None and offset <= (<CustomerState>found).offset:
            applied = offset  # rare: the store was ahead of the changelog
            watermark.max_event_ms, watermark.value = max_event, value
            state._rewrite_seen(customer, tx)
            max_event, value = watermark.max_event_ms, watermark.value
            if has_marks and offset in marks:
                marks[offset] = value
            continue
        applied = offset
        if found is not None:
            customer_state = <CustomerState>found
        else:
            customer_state = EventList() if kind == SLIDING else SessionList()
            customers[customer] = customer_state
        PySet_Add(dirty, customer)
        customer_state.offset = offset
        t = tx.event_time_ms
        if kind == SLIDING:
            late = _slide(<EventList>customer_state, customer, t, tx, value, due, expiry, kept)
        else:
            late = _join(<SessionList>customer_state, customer, t, tx, value, due, gap)
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


def session_close(state, int64_t watermark, out):
    """``SessionState._close``: sessions whose gap the watermark has passed close with a
    result; closed ones past the retention leave."""
    cdef dict customers = state.customers
    cdef int64_t gap = state.gap
    cdef int64_t retention = state.config.retention_ms
    cdef TimeHeap due = <TimeHeap?>state._due
    cdef TimeHeap expiry = <TimeHeap?>state._expiry
    cdef set dirty = state.dirty
    cdef list results = out.sessions
    cdef SessionList sessions
    cdef Session* session
    cdef int64_t customer_id, popped_at
    cdef Py_ssize_t first, n, expired
    while due.pop_next(watermark, &popped_at, &customer_id):
        key = customer_id  # boxed once: the lookup and the dirty mark
        found = customers.get(key)
        if found is None:
            continue
        sessions = <SessionList>found
        # Spans never overlap, so sessions sorted by start are sorted by last event too:
        # the closed ones are a prefix, and the ones to close now end it.
        n = sessions._sessions.size()
        first = n
        while first and not sessions._sessions[first - 1].closed:
            first -= 1
        while first < n:
            session = &sessions._sessions[first]
            if session.last + gap > watermark:
                break
            session.closed = 1
            PySet_Add(dirty, key)
            results.append(SessionResult(customer_id, session.start, session.last,
                                         session.count, session.total, session.lo,
                                         session.hi))
            expiry.heap.push(pair[int64_t, int64_t](-(session.last + gap + retention),
                                                    -customer_id))
            first += 1
    while expiry.pop_next(watermark, &popped_at, &customer_id):
        key = customer_id  # boxed once: the lookup and the dirty mark
        found = customers.get(key)
        if found is None:
            continue
        sessions = <SessionList>found
        # Expired sessions are a prefix of the closed ones (see above).
        n = sessions._sessions.size()
        expired = 0
        while (expired < n and sessions._sessions[expired].closed
               and sessions._sessions[expired].last + gap + retention <= watermark):
            expired += 1
        if expired:
            sessions._sessions.erase(sessions._sessions.begin(),
                                     sessions._sessions.begin() + expired)
            PySet_Add(dirty, key)


# -- state records ----------------------------------------------------------------------------

cdef void _write_events(object state, string& text, int64_t unused) noexcept:
    cdef EventList events = <EventList>state
    cdef Py_ssize_t i
    text.append(b'{"o":')
    put_int(text, events.offset)
    text.append(b',"f":')
    put_int(text, events.finalized)
    text.append(b',"e":[')
    for i in range(<Py_ssize_t>events._times.size()):
        text.append(b',[' if i else b'[')
        put_int(text, events._times[i])
        text.push_back(b',')
        put_int(text, events._amounts[i])
        text.push_back(b']')
    text.append(b']}')


cdef void _write_sessions(object state, string& text, int64_t unused) noexcept:
    cdef SessionList sessions = <SessionList>state
    cdef Py_ssize_t i
    text.append(b'{"o":')
    put_int(text, sessions.offset)
    text.append(b',"s":[')
    for i in range(<Py_ssize_t>sessions._sessions.size()):
        if i:
            text.push_back(b',')
        # A Session is seven int64 fields in the order of the record's entry.
        put_ints(text, <int64_t*>&sessions._sessions[i], 7)
    text.append(b']}')


def sliding_dump_records(dict customers, set dirty):
    """``(key, value)`` of each dirty customer's state record, as ``orjson.dumps`` of
    ``CompiledSlidingState._dump`` writes it."""
    return dump_records(customers, dirty, _write_events, 0)


def session_dump_records(dict customers, set dirty):
    """``(key, value)`` of each dirty customer's state record, as ``orjson.dumps`` of
    ``CompiledSessionState._dump`` writes it."""
    return dump_records(customers, dirty, _write_sessions, 0)
