"""Dashboard: the live HTML page and the JSON it polls, merged over every worker's partitions."""

from __future__ import annotations

import base64
import hashlib
import heapq
import logging
import re
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from app.records.outputs import money
from app.records.times import format_time
from tables.fixed import COUNT, TOTAL, FixedWindowState

from .metrics import worker_snapshot
from .peers import fetch_local_parts
from .security import shown

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = [
    "TOP_CUSTOMERS",
    "dashboard_html",
    "install_dashboard",
    "local_part",
    "merge_parts",
    "tumbling_summary",
]

logger = logging.getLogger(__name__)

#: Customers listed for the current window.
TOP_CUSTOMERS = 10
#: Alerts listed.
LATEST_ALERTS = 10
#: Seconds to wait for another worker's part of the data.
DATA_PATH = "/dashboard/data/"


# -- one worker -----------------------------------------------------------------------------


def tumbling_summary(state: FixedWindowState, top: int = TOP_CUSTOMERS) -> dict[str, Any]:
    """A partition's tumbling windows summed over its customers, and its latest window's top.

    Exact: counts and totals are integer cents. ``top`` lists the customers with the
    largest totals in the partition's latest window (ties: lower customer id first).
    """
    sums: dict[int, list[int]] = {}   # start -> [count, total, customers, all closed]
    watermark, size = state.watermark.value, state.size
    for customer in state.customers.values():
        is_closed = customer.is_closed
        for start, window in customer.windows.items():
            row = sums.get(start)
            if row is None:
                row = sums[start] = [0, 0, 0, 1]
            row[0] += window[COUNT]
            row[1] += window[TOTAL]
            row[2] += 1
            if not is_closed(start + size, watermark):
                row[3] = 0
    windows = [{"start_ms": start, "count": count, "total_cents": total, "customers": n,
                "closed": bool(closed)}
               for start, (count, total, n, closed) in sorted(sums.items())]
    latest = max(sums) if sums else None
    leaders: list[dict[str, Any]] = []
    if latest is not None:
        candidates = (
            (found[TOTAL], -customer_id, found[COUNT])
            for customer_id, customer in state.customers.items()
            if (found := customer.windows.get(latest)) is not None
        )
        leaders = [{"customer_id": -neg_id, "count": count, "total_cents": total}
                   for total, neg_id, count in heapq.nlargest(top, candidates)]
    return {"windows": windows, "top": {"start_ms": latest, "customers": leaders}}


def local_part(app: TxApp, started: float) -> dict[str, Any]:
    """This worker's share of the dashboard: its partitions with their window sums."""
    snapshot = worker_snapshot(app, started)
    states = app.pipeline.states
    partitions = []
    for row in snapshot["partitions"]:
        state = states[row["partition"]]
        watermark, max_event = row["watermark_ms"], row["max_event_ms"]
        partitions.append({
            **row,
            "watermark": format_time(watermark) if watermark is not None else None,
            "max_event_time": format_time(max_event) if max_event is not None else None,
            "worker": snapshot["worker"],
            **tumbling_summary(state.tumbling),
        })
    outputs = snapshot["outputs"]
    return {
        "worker": snapshot["worker"],
        "generated_at": format_time(snapshot["now_ms"]),
        "uptime_seconds": snapshot["uptime_seconds"],
        "events_per_second": snapshot["events_per_second"],
        "recovering": snapshot["recovery"]["in_progress"],
        "alerts_sent": sum(outputs["alerts"].values()),
        "window_results_sent": sum(row["count"] for row in outputs["window_results"]),
        "partitions": partitions,
    }


# -- every worker ---------------------------------------------------------------------------


def _cents(amount: float | int) -> int:
    """Cents of an amount printed by :func:`app.records.outputs.money` (exact, via its text)."""
    return int(Decimal(repr(amount)) * 100)


def _window_row(start: int, size_ms: int, count: int, total: int, **extra: Any) -> dict[str, Any]:
    return {"start": format_time(start), "end": format_time(start + size_ms), "start_ms": start,
            "end_ms": start + size_ms, "count": count, "total": money(total),
            "total_cents": total, **extra}


def merge_parts(parts: Iterable[Mapping[str, Any]], *, partitions_expected: int,
                window_size_ms: int, kinds: Iterable[str],
                alerts: Iterable[Mapping[str, Any]] = (),
                workers: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The dashboard's data from the parts of every worker (see :func:`local_part`).

    A partition reported by two workers (a rebalance in flight) is taken from the one that
    has applied more events. Totals are summed in integer cents, then formatted.
    """
    parts = list(parts)
    chosen: dict[int, Mapping[str, Any]] = {}
    for part in parts:
        for row in part["partitions"]:
            p = row["partition"]
            if p not in chosen or row["events"] > chosen[p]["events"]:
                chosen[p] = row
    rows = [chosen[p] for p in sorted(chosen)]

    sums: dict[int, list[int]] = {}
    for row in rows:
        for w in row["windows"]:
            acc = sums.setdefault(w["start_ms"], [0, 0, 0, 1])
            acc[0] += w["count"]
            acc[1] += w["total_cents"]
            acc[2] += w["customers"]
            acc[3] &= int(w["closed"])
    windows = [_window_row(start, window_size_ms, count, total, customers=n, closed=bool(closed))
               for start, (count, total, n, closed) in sorted(sums.items())]

    current = None
    if sums:
        latest = max(sums)
        leaders = [c for row in rows if row["top"]["start_ms"] == latest
                   for c in row["top"]["customers"]]
        leaders.sort(key=lambda c: (-c["total_cents"], c["customer_id"]))
        count, total, n, closed = sums[latest]
        current = {
            **_window_row(latest, window_size_ms, count, total, customers=n,
                          closed=bool(closed)),
            "top": [{"customer_id": c["customer_id"], "count": c["count"],
                     "total": money(c["total_cents"]), "total_cents": c["total_cents"]}
                    for c in leaders[:TOP_CUSTOMERS]],
        }

    kinds = list(kinds)
    late = {kind: sum(row["late"].get(kind, 0) for row in rows) for kind in kinds}
    lags = [row["event_time_lag_seconds"] for row in rows
            if row["event_time_lag_seconds"] is not None]
    return {
        "generated_at": format_time(int(time.time() * 1000)),
        "window_size_seconds": window_size_ms / 1000,
        "partitions_expected": partitions_expected,
        "missing_partitions": sorted(set(range(partitions_expected)) - set(chosen)),
        "workers": list(workers) or [_worker_row(part) for part in parts],
        "events_per_second": round(sum(part["events_per_second"] for part in parts), 3),
        "events_in": sum(row["events"] for row in rows),
        "dead_letters": sum(row["dead_letters"] for row in rows),
        "duplicates": sum(row.get("duplicates", 0) for row in rows),
        "duplicate_conflicts": sum(row.get("duplicate_conflicts", 0) for row in rows),
        "late": late,
        "late_total": sum(late.values()),
        "alerts_sent": sum(part["alerts_sent"] for part in parts),
        "window_results_sent": sum(part["window_results_sent"] for part in parts),
        "event_time_lag_seconds": max(lags) if lags else None,
        "windows": windows,
        "current_window": current,
        "partitions": [{k: v for k, v in row.items() if k not in ("windows", "top")}
                       for row in rows],
        "alerts": [{**alert, "total_cents": _cents(alert["total"])} for alert in alerts],
    }


async def cluster_data(app: TxApp, own: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's data over every partition: this worker's part ``own`` and its peers'."""
    parts = [own]
    workers: list[dict[str, Any]] = [_worker_row(own)]
    for url, result in await fetch_local_parts(app, DATA_PATH):
        if isinstance(result, BaseException):
            logger.warning("dashboard: no data from %s: %r", url, result)
            workers.append({"url": str(url), "ok": False, "partitions": [],
                            "events_per_second": None,
                            "error": type(result).__name__ if not str(result)
                            else str(result)[:200]})
        else:
            parts.append(result)
            workers.append(_worker_row(result))
    settings = app.settings
    data = merge_parts(parts, partitions_expected=settings.partitions,
                       window_size_ms=settings.tumbling_ms, kinds=settings.window_kind_list,
                       alerts=app.alerts_tail.latest(LATEST_ALERTS),  # type: ignore[attr-defined]
                       workers=workers)
    data["answered_by"] = own["worker"]
    data["alert_threshold"] = money(settings.alert_threshold_cents)
    data["alert_threshold_cents"] = settings.alert_threshold_cents
    return data


def _worker_row(part: Mapping[str, Any]) -> dict[str, Any]:
    return {"url": part["worker"], "ok": True, "error": None,
            "partitions": [row["partition"] for row in part["partitions"]],
            "events_per_second": part["events_per_second"]}


# -- the page -------------------------------------------------------------------------------


@cache
def dashboard_html() -> tuple[str, str]:
    """The page (a package data file) and its Content-Security-Policy.

    The policy allows the page's own inline script and style (by hash, so nothing
    injected would run or apply) and requests to this origin only: nothing is loaded from
    anywhere else, so it works offline.
    """
    html = resources.files("app.web").joinpath("static/dashboard.html").read_text("utf-8")

    def hashes(tag: str) -> str:
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
            for block in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL))

    policy = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
              "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")
    return html, policy


class _LocalCache:
    """This worker's part, computed at most once per ``ttl`` seconds.

    Summing the windows walks every customer of the owned partitions; several open pages
    and the other workers' fan-out requests then share one walk.
    """

    def __init__(self, app: TxApp, ttl: float = 1.0) -> None:
        self.app = app
        self.ttl = ttl
        self.started = time.monotonic()
        self._part: dict[str, Any] | None = None
        self._at = 0.0

    def get(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._part is None or now - self._at >= self.ttl:
            self._part = local_part(self.app, self.started)
            self._at = now
        return self._part


def install_dashboard(app: TxApp) -> None:
    """Serve ``GET /dashboard/`` and ``GET /dashboard/data/`` (``?local=1``: this worker)."""
    local = _LocalCache(app)

    @app.page("/dashboard/")
    class DashboardPage(View):
        """The live dashboard (HTML; polls the data view every 5 s)."""

        async def get(self, request: Request) -> Response:
            html, policy = dashboard_html()
            return self.html(html, headers={"Content-Security-Policy": policy,
                                            "Cache-Control": "no-store"})

    @app.page(DATA_PATH)
    class DashboardData(View):
        """What the dashboard shows, over every partition (``?local=1``: this worker's)."""

        async def get(self, request: Request) -> Response:
            only_here = request.query.get("local")
            if only_here not in (None, "0", "1"):
                return self.json({"error": f"local must be 0 or 1, got {shown(only_here)}",
                                  "status": 400}, status=400)
            data = local.get() if only_here == "1" else await cluster_data(app, local.get())
            return self.json(data, headers={"Cache-Control": "no-store"})
