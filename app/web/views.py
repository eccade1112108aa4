"""Web views: windows, sessions, alerts and stats as JSON, routed to the owning worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from faust.web import Request, Response, View

from app.records.outputs import money, window_json
from app.records.times import format_time
from tables.windows import WindowKind

from .alerts_tail import AlertsTail
from .dashboard import install_dashboard
from .login import install_login
from .metrics import install_metrics, worker_snapshot
from .openapi import install_openapi
from .peers import fetch_local_parts
from .probes import install_probes
from .security import install_security, shown

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = ["install_error_handler", "install_views", "json_errors", "parse_customer_id",
           "parse_limit"]

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
    tail = AlertsTail(app.kafka, app.topic_names.alerts, skipped=app.skipped_records)
    app.alerts_tail = tail  # type: ignore[attr-defined]
    started = time.monotonic()

    def customer_view(inner: Handler) -> Handler:
        # Validate before routing: Faust routes by the raw URL segment, so a non-canonical
        # id ("007") would hash to another worker's partition. Faust forwards the request
        # with all its headers (app/router.py _route_req), so the owner sees the same
        # Authorization or session cookie and checks it the same way.
        routed = app.table_route(table=route_table, match_info="customer_id")(inner)

        async def get(view: View, request: Request, customer_id: str, **kwargs: Any) -> Response:
            if parse_customer_id(customer_id) is None:
                return _error(view, 400, f"customer id must be a positive integer, "
                                         f"got {shown(customer_id)}")
            kind = kwargs.get("kind")
            if kind is not None and kind not in WINDOW_KINDS:
                return _error(view, 400, f"window kind must be one of {', '.join(WINDOW_KINDS)},"
                                         f" got {shown(kind)}")
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
                                         f"got {shown(request.query.get('limit'))}")
            return self.json({"alerts": tail.latest(limit)})

    @app.page("/stats/")
    class StatsView(View):
        """Every partition (``?local=1``: this worker's): events, late, DLQ, watermarks, lag."""

        async def get(self, request: Request) -> Response:
            own = worker_stats(app, started)
            if request.query.get("local") == "1":
                return self.json(own)
            return self.json(merge_stats(own, await fetch_local_parts(app, "/stats/"),
                                         app.settings.partitions))

    async def _follow_alerts() -> None:
        await tail.run()

    app.task(_follow_alerts)

    install_dashboard(app)
    install_metrics(app)
    install_openapi(app)
    install_probes(app)
    install_login(app)
    install_error_handler(app)
    install_security(app)


@web.middleware
async def json_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      ) -> web.StreamResponse:
    """Any unhandled exception in a view: a JSON 500 without details (they go to the log).

    aiohttp's own answer is a plain-text 500, with the traceback when the event loop runs
    in debug mode; this one never carries one. An owning worker that cannot be reached
    while a request is routed to it is a 503 (retry), not a 500.
    """
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (aiohttp.ClientError, TimeoutError):
        logger.warning("%s %s: the worker it was routed to did not answer",
                       request.method, request.path, exc_info=True)
        return web.json_response({"error": "the worker that owns this data did not answer; "
                                           "retry", "status": 503}, status=503)
    except Exception:
        logger.exception("%s %s: unhandled error", request.method, request.path)
        return web.json_response({"error": "internal error", "status": 500}, status=500)


def install_error_handler(app: TxApp) -> None:
    """Put :func:`json_errors` in front of every view (before the web server starts)."""
    web_app = getattr(app.web, "web_app", None)
    if web_app is not None and json_errors not in web_app.middlewares:
        web_app.middlewares.append(json_errors)


def merge_stats(own: dict[str, Any], peers: list[tuple[Any, dict[str, Any] | BaseException]],
                partitions_expected: int) -> dict[str, Any]:
    """One answer for the whole group from each worker's own stats (a partition counted once)."""
    parts = [own] + [part for _, part in peers if not isinstance(part, BaseException)]
    # Records skipped per worker, not summed: every worker reads the whole alerts topic.
    workers = [{"url": part["worker"], "ok": True,
                "partitions": [p["partition"] for p in part["partitions"]],
                "recovery": part["recovery"],
                "broker": part.get("broker"),
                "skipped_records": part.get("skipped_records", {})} for part in parts]
    workers += [{"url": str(url), "ok": False, "error": str(part)[:200] or type(part).__name__}
                for url, part in peers if isinstance(part, BaseException)]
    by_partition: dict[int, dict[str, Any]] = {}
    for part in parts:
        for row in part["partitions"]:
            by_partition.setdefault(row["partition"], row)
    rows = [by_partition[p] for p in sorted(by_partition)]
    late: dict[str, int] = {}
    for row in rows:
        for kind, count in row["late"].items():
            late[kind] = late.get(kind, 0) + count
    return {
        "answered_by": own["worker"],
        # As the answering worker sees it; each worker's own view is under "workers".
        "broker": own.get("broker"),
        "events_in": sum(row["events"] for row in rows),
        "late": late,
        "dead_letters": sum(row["dead_letters"] for row in rows),
        "duplicates": sum(row.get("duplicates", 0) for row in rows),
        "duplicate_conflicts": sum(row.get("duplicate_conflicts", 0) for row in rows),
        "alerts": own["alerts"],
        "throughput_per_second": round(sum(part["throughput_per_second"] for part in parts), 1),
        "missing_partitions": sorted(set(range(partitions_expected)) - set(by_partition)),
        "partitions": rows,
        "workers": workers,
    }


def _broker_json(broker: dict[str, Any]) -> dict[str, Any]:
    """The broker monitor's snapshot with an ISO time."""
    since = broker["since_ms"]
    return {"reachable": broker["reachable"],
            "since": format_time(since) if since is not None else None,
            "for_seconds": broker["for_seconds"], "outages": broker["outages"],
            "last_error": broker["last_error"]}


def worker_stats(app: TxApp, started: float) -> dict[str, Any]:
    """Stats of the partitions this worker owns (``/stats/?local=1``).

    The per-partition figures are the metrics snapshot's, in ISO times.
    """
    snapshot = worker_snapshot(app, started)
    partitions = []
    for row in snapshot["partitions"]:
        watermark, max_event = row["watermark_ms"], row["max_event_ms"]
        partitions.append({
            "partition": row["partition"],
            "events": row["events"],
            "dead_letters": row["dead_letters"],
            "duplicates": row["duplicates"],
            "duplicate_conflicts": row["duplicate_conflicts"],
            "late": row["late"],
            "watermark": format_time(watermark) if watermark is not None else None,
            "max_event_time": format_time(max_event) if max_event is not None else None,
            "event_time_lag_seconds": row["event_time_lag_seconds"],
        })
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    remaining = {f"{tp.topic}/{tp.partition}": stats.remaining
                 for tp, stats in {**recovery.active_stats(), **recovery.standby_stats()}.items()}
    return {
        "worker": app.conf.canonical_url.human_repr() if app.conf.canonical_url else None,
        "recovery": {
            "completed": recovery.completed.is_set(),
            "active_remaining": recovery.active_remaining_total(),
            # Not Faust's standby_remaining_total: it counts a fresh standby as caught up.
            "standby_remaining": recovery.standby_behind(),
            "remaining_by_partition": remaining,
        },
        "uptime_seconds": snapshot["uptime_seconds"],
        "events_in": sum(p["events"] for p in partitions),
        "late": {kind: sum(p["late"][kind] for p in partitions)
                 for kind in app.settings.window_kind_list},
        "dead_letters": sum(p["dead_letters"] for p in partitions),
        "duplicates": sum(p["duplicates"] for p in partitions),
        "duplicate_conflicts": sum(p["duplicate_conflicts"] for p in partitions),
        "alerts": len(app.alerts_tail),  # type: ignore[attr-defined]
        "skipped_records": app.skipped_records.snapshot(),
        "broker": _broker_json(snapshot["broker"]),
        "throughput_per_second": round(snapshot["events_per_second"], 1),
        "partitions": partitions,
    }
