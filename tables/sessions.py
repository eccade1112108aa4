"""Session windows: a customer's session grows while events keep coming, closes after a gap."""

from __future__ import annotations

from heapq import heappush
from typing import Any

from .aggregate import Aggregate
from .kindstate import PerEventKindState
from .outputs import Outputs, SessionResult, TransactionLike
from .schedule import TimeQueue
from .validate import require_int, require_int_rows
from .windows import WindowConfig, WindowKind

__all__ = ["CustomerSessions", "Session", "SessionEntry", "SessionState"]

#: A session as the state keeps it, and as its state record lists it:
#: ``[start, last, count, total, min, max, closed]`` (closed is 0 or 1).
SessionEntry = list[int]
_START, _LAST, _COUNT, _TOTAL, _MIN, _MAX, _CLOSED = range(7)


class Session(Aggregate):
    """First and last event time of a session, its aggregate, and whether it has closed.

    What :meth:`SessionState.sessions_of` returns: a readable copy of a session entry.
    """

    __slots__ = ("closed", "last", "start")

    def __init__(self, start: int, last: int, count: int = 0, total: int = 0, min: int = 0,
                 max: int = 0, closed: bool = False) -> None:
        super().__init__(count, total, min, max)
        self.start = start
        self.last = last
        self.closed = closed

    @classmethod
    def of(cls, entry: SessionEntry) -> Session:
        """The session a state entry describes."""
        start, last, count, total, lo, hi, closed = entry
        return cls(start, last, count, total, lo, hi, bool(closed))


class CustomerSessions:
    """One customer's sessions sorted by start, and the highest offset applied to them."""

    __slots__ = ("offset", "sessions")

    def __init__(self, offset: int = -1, sessions: list[SessionEntry] | None = None) -> None:
        self.offset = offset
        self.sessions: list[SessionEntry] = sessions if sessions is not None else []


class SessionState(PerEventKindState[CustomerSessions]):
    """Sessions with inactivity gap ``gap``: each event spans ``[t, t + gap)``; spans that
    overlap form one session, which closes when the watermark reaches ``last + gap``.

    An event whose own span has already closed (``t + gap <= watermark``) is late. A late
    event inside the allowed lateness can extend a session or merge two open sessions;
    closed sessions are final and never merge.
    """

    kind = WindowKind.SESSION.value

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self._due: TimeQueue = TimeQueue()
        self._expiry: TimeQueue = TimeQueue()
        self.gap = config.session_gap_ms
        self._due_heap = self._due.heap  # pushed to once per event

    def _new_customer(self) -> CustomerSessions:
        return CustomerSessions()

    def _apply(self, state: CustomerSessions, offset: int, tx: TransactionLike,
               out: Outputs) -> bool:
        state.offset = offset
        t = tx.event_time_ms
        gap = self.gap
        watermark = self.watermark.value
        if t + gap <= watermark:
            return True
        # Sessions are sorted by start and their spans never overlap, so the ones this
        # event's span [t, t + gap) touches are next to each other, near the end.
        sessions = state.sessions
        hi = len(sessions)
        while hi and sessions[hi - 1][_START] >= t + gap:
            hi -= 1
        lo = hi
        while lo and sessions[lo - 1][_LAST] + gap > t:
            lo -= 1
        # Closed is decided by the watermark now, not by the flag set at the end of a batch,
        # so the result does not depend on where batches begin; a closed session is final.
        for i in range(lo, hi):
            if sessions[i][_CLOSED] or sessions[i][_LAST] + gap <= watermark:
                return True
        cents = tx.amount_cents
        if lo == hi:
            merged = [t, t, 1, cents, cents, cents, 0]
            sessions.insert(lo, merged)
        elif hi - lo == 1:
            # Most events extend one session: update it in place.
            merged = sessions[lo]
            if t < merged[_START]:
                merged[_START] = t
            elif t > merged[_LAST]:
                merged[_LAST] = t
            merged[_COUNT] += 1
            merged[_TOTAL] += cents
            if cents < merged[_MIN]:
                merged[_MIN] = cents
            elif cents > merged[_MAX]:
                merged[_MAX] = cents
        else:
            merged = sessions[lo]
            for other in sessions[lo + 1:hi]:
                merged[_LAST] = max(merged[_LAST], other[_LAST])
                merged[_COUNT] += other[_COUNT]
                merged[_TOTAL] += other[_TOTAL]
                merged[_MIN] = min(merged[_MIN], other[_MIN])
                merged[_MAX] = max(merged[_MAX], other[_MAX])
            del sessions[lo + 1:hi]
            merged[_START] = min(merged[_START], t)
            merged[_LAST] = max(merged[_LAST], t)
            merged[_COUNT] += 1
            merged[_TOTAL] += cents
            merged[_MIN] = min(merged[_MIN], cents)
            merged[_MAX] = max(merged[_MAX], cents)
        heappush(self._due_heap, (merged[_LAST] + gap) << 64 | tx.customer_id)  # TimeQueue.push
        return False

    def _would_be_late(self, tx: TransactionLike) -> bool:
        return tx.event_time_ms + self.gap <= self.watermark.value

    def _close(self, watermark: int, out: Outputs) -> None:
        customers = self.customers
        gap, retention = self.gap, self.config.retention_ms
        results, dirty_add, push_expiry = out.sessions, self.dirty.add, self._expiry.push
        for _, customer_id in self._due.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            # Spans never overlap, so sessions sorted by start are sorted by last event
            # too: the closed ones are a prefix, and the ones to close now end it.
            sessions = state.sessions
            first = len(sessions)
            while first and not sessions[first - 1][_CLOSED]:
                first -= 1
            for session in sessions[first:]:
                last = session[_LAST]
                if last + gap > watermark:
                    break
                session[_CLOSED] = 1
                dirty_add(customer_id)
                results.append(SessionResult(customer_id, *session[:_CLOSED]))
                push_expiry(last + gap + retention, customer_id)
        for _, customer_id in self._expiry.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            # Expired sessions are a prefix of the closed ones (see above).
            sessions = state.sessions
            expired = 0
            while (expired < len(sessions) and sessions[expired][_CLOSED]
                   and sessions[expired][_LAST] + gap + retention <= watermark):
                expired += 1
            if expired:
                del sessions[:expired]
                dirty_add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerSessions) -> None:
        for session in state.sessions:
            if session[_CLOSED]:
                self._expiry.push(session[_LAST] + self.gap + self.config.retention_ms,
                                  customer_id)
            else:
                self._due.push(session[_LAST] + self.gap, customer_id)

    def _dump(self, state: CustomerSessions) -> Any:
        # The entries are the record's own lists: orjson writes them without Python code.
        return {"o": state.offset, "s": state.sessions}

    def _load(self, data: dict[str, Any]) -> CustomerSessions:
        return CustomerSessions(*self._read_record(data))

    @staticmethod
    def _read_record(data: dict[str, Any]) -> tuple[int, list[SessionEntry]]:
        """A customer record's applied offset and session entries."""
        offset = require_int(data.get("o"), "the applied offset")
        return offset, require_int_rows(data.get("s"), 7, "the sessions")

    def sessions_of(self, customer_id: int) -> list[Session]:
        """A customer's open and recently closed sessions, sorted by start."""
        state = self.customers.get(customer_id)
        return [Session.of(entry) for entry in state.sessions] if state is not None else []
