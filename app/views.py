"""Web views: windows, sessions, alerts and stats as JSON, routed to the owning worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from tables.windows import WindowKind

from .alerts_tail import AlertsTail
from .outputs import money, window_json
from .records import format_time

if TYPE_CHECKING:
    from .faustapp import TxApp

__all__ = ["install_views", "parse_customer_id", "parse_limit"]

logger = logging.getLogger(__name__)

WINDOW_KINDS = (WindowKind.TUMBLING.value, WindowKind.HOPPING.value, WindowKind.SLIDING.value)
MAX_LIMIT = 1000


def parse_customer_id(text: str) -> int | None:
    """A customer id from a URL segment: a positive integer in canonical form, else None."""
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        return None
    value = int(text)
    return value if 0 < value < 2**63 else None


def parse_limit(text: str | None, default: int = 50) -> int | None:
    """``?limit=N`` with 1 <= N <= 1000, else None."""
    if text is None:
        return default
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_LIMIT else None


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message, "status": status}, status=status)


Handler = Callable[..., Awaitable[Response]]


def install_views(app: TxApp) -> None:
    """Register every JSON view on the app."""
    route_table = app.state_tables[WindowKind.TUMBLING.value]
    tail = AlertsTail(app.bootstrap, app.topic_names.alerts)
    app.alerts_tail = tail  # type: ignore[attr-defined]
    started = time.monotonic()

    def customer_view(inner: Handler) -> Handler:
        # Validate before routing: Faust routes by the raw URL segment, so a non-canonical
        # id ("007") would hash to another worker's partition.
        routed = app.table_route(table=route_table, match_info="customer_id")(inner)

        async def get(view: View, request: Request, customer_id: str, **kwargs: Any) -> Response:
            if parse_customer_id(customer_id) is None:
                return _error(view, 400, f"customer id must be a positive integer, "
                                         f"got {customer_id!r}")
            kind = kwargs.get("kind")
            if kind is not None and kind not in WINDOW_KINDS:
                return _error(view, 400, f"window kind must be one of {', '.join(WINDOW_KINDS)},"
                                         f" got {kind!r}")
            if kind is not None and kind not in app.settings.window_kind_list:
                return _error(view, 404, f"this deployment does not keep {kind} windows"
                                         f" (TXSTREAM_WINDOW_KINDS)")
            result: Response = await routed(  # type: ignore[call-arg]
                view, request, customer_id=customer_id, **kwargs)
            return result

        return get

    def owned_state(customer: int) -> Any:
        partition = app.producer.key_partition(route_table.changelog_topic.get_topic_name(),
                                               str(customer).encode()).partition
        pipeline = app.pipeline
        if partition not in pipeline.states:
            if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
                return None
            return pipeline.state_for(partition)
        return pipeline.states[partition]

    @app.page("/customers/{customer_id}/windows/{kind}/")
    class WindowsView(View):
        """A customer's windows of one kind, sorted by start."""

        async def _get(self, request: Request, customer_id: str, kind: str) -> Response:
            customer = int(customer_id)
            state = owned_state(customer)
            if state is None:
                return _error(self, 503, "this worker is still recovering its state; retry")
            watermark = state.watermark
            if kind == WindowKind.SLIDING.value:
                rows = [window_json(start, end, agg.count, agg.total, agg.min, agg.max,
                                    closed=end < watermark)
                        for start, end, agg in state.sliding.windows_of(customer)]
            else:
                kind_state = state.kinds[kind]
                rows = [window_json(start, end, w.count, w.total, w.min, w.max,
                                    closed=end <= watermark)
                        for start, end, w in kind_state.windows_of(customer)]
            if not rows and customer not in state.kinds[kind].customers:
                return _error(self, 404, f"unknown customer {customer}")
            return self.json({"customer_id": customer, "kind": kind, "windows": rows})

        get = customer_view(_get)

    @app.page("/customers/{customer_id}/sessions/")
    class SessionsView(View):
        """A customer's open and recently closed sessions."""

        async def _get(self, request: Request, customer_id: str) -> Response:
            customer = int(customer_id)
            state = owned_state(customer)
            if state is None:
                return _error(self, 503, "this worker is still recovering its state; retry")
            if customer not in state.sessions.customers:
                return _error(self, 404, f"unknown customer {customer}")
            rows = [{
                "start": format_time(s.start), "end": format_time(s.last), "count": s.count,
                "total": money(s.total), "min": money(s.min), "max": money(s.max),
                "duration": (s.last - s.start) / 1000, "closed": s.closed,
            } for s in state.sessions.sessions_of(customer)]
            return self.json({"customer_id": customer, "sessions": rows})

        get = customer_view(_get)

    @app.page("/alerts/")
    class AlertsView(View):
        """Most recent alerts first, from every partition."""

        async def get(self, request: Request) -> Response:
            limit = parse_limit(request.query.get("limit"))
            if limit is None:
                return _error(self, 400, f"limit must be an integer from 1 to {MAX_LIMIT}, "
                                         f"got {request.query.get('limit')!r}")
            return self.json({"alerts": tail.latest(limit)})

    @app.page("/stats/")
    class StatsView(View):
        """This worker's partitions: events, late, dead letters, alerts, watermarks, lag."""

        async def get(self, request: Request) -> Response:
            return self.json(worker_stats(app, started))

    async def _follow_alerts() -> None:
        await tail.run()

    app.task(_follow_alerts)


def worker_stats(app: TxApp, started: float) -> dict[str, Any]:
    """Stats of the partitions this worker owns (the dashboard and /metrics use these too)."""
    pipeline = app.pipeline
    now_ms = int(time.time() * 1000)
    partitions = []
    for partition, state in sorted(pipeline.states.items()):
        seen = state.max_event_ms > -(2**61)
        partitions.append({
            "partition": partition,
            "events": state.counter("events"),
            "dead_letters": state.counter("dead_letters"),
            "late": state.late_counts(),
            "watermark": format_time(state.watermark) if seen else None,
            "max_event_time": format_time(state.max_event_ms) if seen else None,
            "event_time_lag_seconds": (now_ms - state.max_event_ms) / 1000 if seen else None,
        })
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    remaining = {f"{tp.topic}/{tp.partition}": stats.remaining
                 for tp, stats in {**recovery.active_stats(), **recovery.standby_stats()}.items()}
    return {
        "worker": app.conf.canonical_url.human_repr() if app.conf.canonical_url else None,
        "recovery": {
            "completed": recovery.completed.is_set(),
            "active_remaining": recovery.active_remaining_total(),
            "standby_remaining": recovery.standby_remaining_total(),
            "remaining_by_partition": remaining,
        },
        "uptime_seconds": round(time.monotonic() - started, 3),
        "events_in": sum(p["events"] for p in partitions),
        "late": {kind: sum(state.late_counts()[kind] for state in pipeline.states.values())
                 for kind in app.settings.window_kind_list},
        "dead_letters": sum(p["dead_letters"] for p in partitions),
        "alerts": len(app.alerts_tail.latest(MAX_LIMIT)),  # type: ignore[attr-defined]
        "throughput_per_second": round(pipeline.throughput.rate(), 1),
        "partitions": partitions,
    }
