"""Session windows: a customer's session grows while events keep coming, closes after a gap."""

from __future__ import annotations

from typing import Any

from .aggregate import Aggregate
from .kindstate import KindState
from .outputs import Outputs, SessionResult, TransactionLike
from .windows import WindowConfig, WindowKind

__all__ = ["CustomerSessions", "Session", "SessionState"]


class Session(Aggregate):
    """First and last event time of a session, its aggregate, and whether it has closed."""

    __slots__ = ("closed", "last", "start")

    def __init__(self, start: int, last: int, count: int = 0, total: int = 0, min: int = 0,
                 max: int = 0, closed: bool = False) -> None:
        super().__init__(count, total, min, max)
        self.start = start
        self.last = last
        self.closed = closed


class CustomerSessions:
    """One customer's sessions sorted by start, and the highest offset applied to them."""

    __slots__ = ("offset", "sessions")

    def __init__(self, offset: int = -1, sessions: list[Session] | None = None) -> None:
        self.offset = offset
        self.sessions: list[Session] = sessions if sessions is not None else []


class SessionState(KindState[CustomerSessions]):
    """Sessions with inactivity gap ``gap``: each event spans ``[t, t + gap)``; spans that
    overlap form one session, which closes when the watermark reaches ``last + gap``.

    An event whose own span has already closed (``t + gap <= watermark``) is late. A late
    event inside the allowed lateness can extend a session or merge two open sessions;
    closed sessions are final and never merge.
    """

    kind = WindowKind.SESSION.value

    def __init__(self, config: WindowConfig) -> None:
        super().__init__(config)
        self.gap = config.session_gap_ms

    def _new_customer(self) -> CustomerSessions:
        return CustomerSessions()

    def _customer_offset(self, state: CustomerSessions) -> int:
        return state.offset

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
        while hi and sessions[hi - 1].start >= t + gap:
            hi -= 1
        lo = hi
        while lo and sessions[lo - 1].last + gap > t:
            lo -= 1
        # Closed is decided by the watermark now, not by the flag set at the end of a batch,
        # so the result does not depend on where batches begin; a closed session is final.
        for session in sessions[lo:hi]:
            if session.closed or session.last + gap <= watermark:
                return True
        if lo == hi:
            merged = Session(t, t)
            merged.add(tx.amount_cents)
            sessions.insert(lo, merged)
        else:
            merged = sessions[lo]
            for other in sessions[lo + 1:hi]:
                merged.last = max(merged.last, other.last)
                merged.merge(other)
            del sessions[lo + 1:hi]
            merged.start = min(merged.start, t)
            merged.last = max(merged.last, t)
            merged.add(tx.amount_cents)
        self._due.push(merged.last + gap, tx.customer_id)
        return False

    def _would_be_late(self, tx: TransactionLike) -> bool:
        return tx.event_time_ms + self.gap <= self.watermark.value

    def _close(self, watermark: int, out: Outputs) -> None:
        customers = self.customers
        gap, retention = self.gap, self.config.retention_ms
        for _, customer_id in self._due.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            for session in state.sessions:
                if not session.closed and session.last + gap <= watermark:
                    session.closed = True
                    self.dirty.add(customer_id)
                    out.sessions.append(SessionResult(customer_id, session.start, session.last,
                                                      session.count, session.total,
                                                      session.min, session.max))
                    self._expiry.push(session.last + gap + retention, customer_id)
        for _, customer_id in self._expiry.pop_due(watermark):
            state = customers.get(customer_id)
            if state is None:
                continue
            kept = [s for s in state.sessions
                    if not (s.closed and s.last + gap + retention <= watermark)]
            if len(kept) != len(state.sessions):
                state.sessions = kept
                self.dirty.add(customer_id)

    def _schedule(self, customer_id: int, state: CustomerSessions) -> None:
        for session in state.sessions:
            if session.closed:
                self._expiry.push(session.last + self.gap + self.config.retention_ms, customer_id)
            else:
                self._due.push(session.last + self.gap, customer_id)

    def _dump(self, state: CustomerSessions) -> Any:
        return {"o": state.offset, "s": [
            [s.start, s.last, s.count, s.total, s.min, s.max, int(s.closed)]
            for s in state.sessions]}

    def _load(self, data: Any) -> CustomerSessions:
        sessions = [Session(start, last, count, total, lo, hi, bool(closed))
                    for start, last, count, total, lo, hi, closed in data["s"]]
        return CustomerSessions(data["o"], sessions)

    def sessions_of(self, customer_id: int) -> list[Session]:
        """A customer's open and recently closed sessions, sorted by start."""
        state = self.customers.get(customer_id)
        return list(state.sessions) if state is not None else []

