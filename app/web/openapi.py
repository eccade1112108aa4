"""OpenAPI: the hand-written OpenAPI 3 description of every HTTP endpoint, served as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = ["OPENAPI_PATH", "install_openapi", "openapi_document"]

OPENAPI_PATH = "/openapi.json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], example: Any, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema, "example": example}}}


def _error(status: int, message: str, description: str) -> dict[str, Any]:
    return _json(_ref("Error"), {"error": message, "status": status}, description)


_MONEY = {"type": "number", "description": "PLN, exact to the cent (printed from integer cents)"}
_CENTS = {"type": "integer", "description": "The same amount in integer cents (grosze)"}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, `Z` suffix"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_COUNTS_BY_KIND = {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "Per window kind (tumbling, hopping, sliding, session)"}

_INTERNAL = _error(500, "internal error", "An unexpected failure; no details are sent")
_CUSTOMER_ID = {"name": "customer_id", "in": "path", "required": True,
                "description": "A positive integer in canonical form (no sign, no leading 0)",
                "schema": {"type": "integer", "minimum": 1}}

_WINDOW_EXAMPLE = {
    "customer_id": 1, "kind": "tumbling",
    "windows": [
        {"start": "2026-03-12T14:00:00Z", "end": "2026-03-12T14:05:00Z", "count": 3,
         "total": 5000.11, "min": 0.01, "max": 4900.0, "average": 1666.7, "closed": True},
        {"start": "2026-03-12T14:05:00Z", "end": "2026-03-12T14:10:00Z", "count": 1,
         "total": 250.0, "min": 250.0, "max": 250.0, "average": 250.0, "closed": False},
    ],
}
_SESSIONS_EXAMPLE = {
    "customer_id": 1,
    "sessions": [{"start": "2026-03-12T14:00:00Z", "end": "2026-03-12T14:05:00Z", "count": 4,
                  "total": 5250.11, "min": 0.01, "max": 4900.0, "duration": 300.0,
                  "closed": False}],
}
_ALERT_EXAMPLE = {
    "alert_id": "4:1773325200000", "customer_id": 4, "window_start": "2026-03-12T14:20:00Z",
    "window_end": "2026-03-12T14:25:00Z", "total": 5000.01, "count": 1, "threshold": 5000.0,
    "tx_id": "d1", "event_time": "2026-03-12T14:20:00Z",
}
_STATS_EXAMPLE = {
    "worker": "http://127.0.0.1:6066", "uptime_seconds": 42.5, "events_in": 10,
    "late": {"tumbling": 0, "hopping": 0, "sliding": 0, "session": 0}, "dead_letters": 5,
    "duplicates": 3, "duplicate_conflicts": 1, "alerts": 2, "throughput_per_second": 1.5,
    "partitions": [{"partition": 0, "events": 4, "dead_letters": 1, "duplicates": 3,
                    "duplicate_conflicts": 1,
                    "late": {"tumbling": 0, "hopping": 0, "sliding": 0, "session": 0},
                    "watermark": "2026-03-12T14:05:00Z", "max_event_time": "2026-03-12T14:05:00Z",
                    "event_time_lag_seconds": 21453300.1}],
}
_PARTITION_EXAMPLE = {
    "partition": 0, "events": 4, "dead_letters": 1, "duplicates": 3, "duplicate_conflicts": 1,
    "remembered_tx_ids": 4, "late": {"tumbling": 0, "hopping": 0, "sliding": 0, "session": 0},
    "watermark_ms": 1773324300000, "watermark": "2026-03-12T14:05:00Z",
    "max_event_ms": 1773324300000, "max_event_time": "2026-03-12T14:05:00Z",
    "event_time_lag_seconds": 21453300.1, "idle_seconds": 12.3, "consumer_lag": 0,
    "customers": {"tumbling": 1, "hopping": 1, "sliding": 1, "session": 1},
    "worker": "http://127.0.0.1:6066",
}
_DATA_EXAMPLE = {
    "generated_at": "2026-11-24T21:00:00Z", "answered_by": "http://127.0.0.1:6066",
    "window_size_seconds": 300.0, "alert_threshold": 5000.0, "alert_threshold_cents": 500000,
    "partitions_expected": 4, "missing_partitions": [],
    "workers": [{"url": "http://127.0.0.1:6066", "ok": True, "error": None,
                 "partitions": [0, 1], "events_per_second": 0.6},
                {"url": "http://127.0.0.1:6067", "ok": True, "error": None,
                 "partitions": [2, 3], "events_per_second": 0.4}],
    "events_per_second": 1.0, "events_in": 10, "dead_letters": 5, "duplicates": 3,
    "duplicate_conflicts": 1,
    "late": {"tumbling": 0, "hopping": 0, "sliding": 0, "session": 0}, "late_total": 0,
    "alerts_sent": 2, "window_results_sent": 12, "event_time_lag_seconds": 21453300.1,
    "windows": [
        {"start": "2026-03-12T14:00:00Z", "end": "2026-03-12T14:05:00Z",
         "start_ms": 1773324000000, "end_ms": 1773324300000, "count": 5, "total": 10000.11,
         "total_cents": 1000011, "customers": 2, "closed": True},
    ],
    "current_window": {
        "start": "2026-03-12T14:20:00Z", "end": "2026-03-12T14:25:00Z",
        "start_ms": 1773325200000, "end_ms": 1773325500000, "count": 1, "total": 5000.01,
        "total_cents": 500001, "customers": 1, "closed": False,
        "top": [{"customer_id": 4, "count": 1, "total": 5000.01, "total_cents": 500001}],
    },
    "partitions": [_PARTITION_EXAMPLE],
    "alerts": [{**_ALERT_EXAMPLE, "total_cents": 500001}],
}
_PART_EXAMPLE = {
    "worker": "http://127.0.0.1:6066", "generated_at": "2026-11-24T21:00:00Z",
    "uptime_seconds": 42.5, "events_per_second": 0.6, "recovering": False,
    "alerts_sent": 1, "window_results_sent": 6,
    "partitions": [{**_PARTITION_EXAMPLE,
                    "windows": [{"start_ms": 1773324000000, "count": 3, "total_cents": 500011,
                                 "customers": 1, "closed": True}],
                    "top": {"start_ms": 1773324300000,
                            "customers": [{"customer_id": 1, "count": 1,
                                           "total_cents": 25000}]}}],
}
_METRICS_EXAMPLE = """\
# HELP txstream_events_total Valid transactions applied to a source partition's state (...)
# TYPE txstream_events_total counter
txstream_events_total{partition="0"} 4
txstream_events_total{partition="1"} 6
# HELP txstream_late_events_total Events that arrived after their window of this kind had closed.
# TYPE txstream_late_events_total counter
txstream_late_events_total{partition="0",kind="tumbling"} 0
"""

_CHECK = {"type": "object", "required": ["name", "ok", "detail"],
          "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"},
                         "detail": {"type": "string"}}}
_READY_EXAMPLE = {
    "ready": False,
    "checks": [
        {"name": "assigned", "ok": True, "detail": "partitions [0, 1] of transactions"},
        {"name": "recovered", "ok": False,
         "detail": "restoring tables from their changelogs: 1200 record(s) to go"},
        {"name": "consuming", "ok": True, "detail": "reading transactions"},
    ],
    "reasons": ["recovered: restoring tables from their changelogs: 1200 record(s) to go"],
}

_SCHEMAS: dict[str, Any] = {
    "Readiness": {
        "type": "object", "required": ["ready", "checks", "reasons"],
        "properties": {"ready": {"type": "boolean"}, "checks": {"type": "array", "items": _CHECK},
                       "reasons": {"type": "array", "items": {"type": "string"}}},
    },
    "Error": {
        "type": "object", "required": ["error", "status"],
        "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    },
    "Window": {
        "type": "object",
        "description": "One window: `[start, end)` (sliding: `(start, end]`).",
        "properties": {
            "start": _TIME, "end": _TIME, "count": {"type": "integer"}, "total": _MONEY,
            "min": {**_MONEY, "nullable": True}, "max": {**_MONEY, "nullable": True},
            "average": {"type": "number", "nullable": True,
                        "description": "total / count, rounded half-even to the cent"},
            "closed": {"type": "boolean",
                       "description": "The watermark has passed the end: final value"},
        },
    },
    "CustomerWindows": {
        "type": "object",
        "properties": {"customer_id": {"type": "integer"},
                       "kind": {"type": "string", "enum": ["tumbling", "hopping", "sliding"]},
                       "windows": {"type": "array", "items": _ref("Window"),
                                   "description": "Sorted by start"}},
    },
    "Session": {
        "type": "object",
        "properties": {"start": _TIME, "end": {**_TIME, "description": "Last event time"},
                       "count": {"type": "integer"}, "total": _MONEY, "min": _MONEY,
                       "max": _MONEY, "duration": {"type": "number", "description": "seconds"},
                       "closed": {"type": "boolean"}},
    },
    "CustomerSessions": {
        "type": "object",
        "properties": {"customer_id": {"type": "integer"},
                       "sessions": {"type": "array", "items": _ref("Session")}},
    },
    "Alert": {
        "type": "object",
        "description": "A customer's tumbling-window total passed the threshold (one per "
                       "customer and window; `alert_id` is `customer:window start ms`).",
        "properties": {"alert_id": {"type": "string"}, "customer_id": {"type": "integer"},
                       "window_start": _TIME, "window_end": _TIME,
                       "total": {**_MONEY, "description": "Window total when it passed"},
                       "count": {"type": "integer"}, "threshold": _MONEY,
                       "tx_id": {"type": "string",
                                 "description": "The transaction that passed the threshold"},
                       "event_time": _TIME},
    },
    "Alerts": {"type": "object",
               "properties": {"alerts": {"type": "array", "items": _ref("Alert"),
                                         "description": "Most recent event time first"}}},
    "Stats": {
        "type": "object", "description": "The partitions of the worker that answers.",
        "properties": {
            "worker": {"type": "string"}, "uptime_seconds": {"type": "number"},
            "events_in": {"type": "integer"}, "late": _COUNTS_BY_KIND,
            "dead_letters": {"type": "integer"}, "alerts": {"type": "integer"},
            "duplicates": {"type": "integer",
                           "description": "Repeats of an applied tx_id skipped (exact)"},
            "duplicate_conflicts": {"type": "integer", "description":
                                    "Repeats with other content, dead-lettered (exact)"},
            "throughput_per_second": {"type": "number"},
            "partitions": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Partition": {
        "type": "object",
        "properties": {
            "partition": {"type": "integer"},
            "events": {"type": "integer", "description": "Valid events applied (exact)"},
            "dead_letters": {"type": "integer"}, "late": _COUNTS_BY_KIND,
            "duplicates": {"type": "integer",
                           "description": "Repeats of an applied tx_id skipped (exact)"},
            "duplicate_conflicts": {"type": "integer", "description":
                                    "Repeats with other content, dead-lettered (exact)"},
            "remembered_tx_ids": {"type": "integer",
                                  "description": "tx_ids the duplicate check holds"},
            "watermark_ms": {"type": "integer", "nullable": True}, "watermark": _NULLABLE_TIME,
            "max_event_ms": {"type": "integer", "nullable": True},
            "max_event_time": _NULLABLE_TIME,
            "event_time_lag_seconds": {"type": "number", "nullable": True,
                                       "description": "Wall clock - newest event time"},
            "idle_seconds": {"type": "number", "nullable": True,
                             "description": "Since the partition last received a batch"},
            "consumer_lag": {"type": "integer", "nullable": True,
                             "description": "Source records not applied yet"},
            "customers": {**_COUNTS_BY_KIND, "description": "Customers per kind's table"},
            "worker": {"type": "string", "description": "The worker that owns it"},
        },
    },
    "WindowTotal": {
        "type": "object", "description": "One tumbling window summed over all customers.",
        "properties": {"start": _TIME, "end": _TIME, "start_ms": {"type": "integer"},
                       "end_ms": {"type": "integer"}, "count": {"type": "integer"},
                       "total": _MONEY, "total_cents": _CENTS,
                       "customers": {"type": "integer"},
                       "closed": {"type": "boolean",
                                  "description": "Closed in every partition that has it"}},
    },
    "DashboardData": {
        "type": "object",
        "description": "Everything the dashboard shows, over every partition: the worker "
                       "that answers adds the parts of the other workers it learns from "
                       "the partition assignor. `missing_partitions` lists partitions no "
                       "worker reported (a worker down, or a rebalance in flight).",
        "properties": {
            "generated_at": _TIME, "answered_by": {"type": "string"},
            "window_size_seconds": {"type": "number"}, "alert_threshold": _MONEY,
            "alert_threshold_cents": _CENTS, "partitions_expected": {"type": "integer"},
            "missing_partitions": {"type": "array", "items": {"type": "integer"}},
            "workers": {"type": "array", "items": {
                "type": "object",
                "properties": {"url": {"type": "string"}, "ok": {"type": "boolean"},
                               "error": {"type": "string", "nullable": True},
                               "partitions": {"type": "array", "items": {"type": "integer"}},
                               "events_per_second": {"type": "number", "nullable": True}}}},
            "events_per_second": {"type": "number"}, "events_in": {"type": "integer"},
            "dead_letters": {"type": "integer"}, "late": _COUNTS_BY_KIND,
            "duplicates": {"type": "integer",
                           "description": "Repeats of an applied tx_id skipped (exact)"},
            "duplicate_conflicts": {"type": "integer", "description":
                                    "Repeats with other content, dead-lettered (exact)"},
            "late_total": {"type": "integer"},
            "alerts_sent": {"type": "integer",
                            "description": "Alerts sent since the workers started"},
            "window_results_sent": {"type": "integer"},
            "event_time_lag_seconds": {"type": "number", "nullable": True,
                                       "description": "Worst partition"},
            "windows": {"type": "array", "items": _ref("WindowTotal")},
            "current_window": {
                "nullable": True,
                "allOf": [_ref("WindowTotal"), {"type": "object", "properties": {"top": {
                    "type": "array", "description": "Largest totals, at most 10",
                    "items": {"type": "object", "properties": {
                        "customer_id": {"type": "integer"}, "count": {"type": "integer"},
                        "total": _MONEY, "total_cents": _CENTS}}}}}],
            },
            "partitions": {"type": "array", "items": _ref("Partition")},
            "alerts": {"type": "array", "description": "The 10 most recent",
                       "items": {"allOf": [_ref("Alert"), {"type": "object", "properties": {
                           "total_cents": _CENTS}}]}},
        },
    },
    "DashboardPart": {
        "type": "object",
        "description": "One worker's own partitions, with per-partition window sums in "
                       "cents and the top customers of each partition's latest window.",
        "properties": {
            "worker": {"type": "string"}, "generated_at": _TIME,
            "uptime_seconds": {"type": "number"}, "events_per_second": {"type": "number"},
            "recovering": {"type": "boolean"}, "alerts_sent": {"type": "integer"},
            "window_results_sent": {"type": "integer"},
            "partitions": {"type": "array", "items": {"allOf": [_ref("Partition"), {
                "type": "object", "properties": {
                    "windows": {"type": "array", "items": {"type": "object"}},
                    "top": {"type": "object"}}}]}},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the JSON API, the dashboard and the metrics."""
    customer_errors = {
        "400": _error(400, "customer id must be a positive integer, got 'abc'",
                      "Bad path parameter"),
        "404": _error(404, "unknown customer 424242", "Unknown customer"),
        "503": _error(503, "this worker is still recovering its state; retry",
                      "The owning worker is recovering"),
        "500": _INTERNAL,
    }
    paths: dict[str, Any] = {
        "/customers/{customer_id}/windows/{kind}/": {"get": {
            "summary": "A customer's windows of one kind",
            "description": "Answered by any worker: the request is routed to the worker that "
                           "owns the customer's partition.",
            "tags": ["customers"],
            "parameters": [_CUSTOMER_ID, {
                "name": "kind", "in": "path", "required": True,
                "schema": {"type": "string", "enum": ["tumbling", "hopping", "sliding"]}}],
            "responses": {"200": _json(_ref("CustomerWindows"), _WINDOW_EXAMPLE,
                                       "Windows sorted by start"), **customer_errors},
        }},
        "/customers/{customer_id}/sessions/": {"get": {
            "summary": "A customer's open and recently closed sessions",
            "tags": ["customers"], "parameters": [_CUSTOMER_ID],
            "responses": {"200": _json(_ref("CustomerSessions"), _SESSIONS_EXAMPLE,
                                       "Sessions sorted by start"), **customer_errors},
        }},
        "/alerts/": {"get": {
            "summary": "The most recent alerts, from every partition",
            "tags": ["alerts"],
            "parameters": [{"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                       "default": 50}}],
            "responses": {
                "200": _json(_ref("Alerts"), {"alerts": [_ALERT_EXAMPLE]},
                             "Most recent event time first"),
                "400": _error(400, "limit must be an integer from 1 to 1000, got '0'",
                              "Bad limit"),
                "500": _INTERNAL,
            },
        }},
        "/stats/": {"get": {
            "summary": "Counters, watermarks and lag of the answering worker's partitions",
            "tags": ["operations"],
            "responses": {"200": _json(_ref("Stats"), _STATS_EXAMPLE, "This worker"),
                          "500": _INTERNAL},
        }},
        "/dashboard/": {"get": {
            "summary": "The live dashboard (HTML)",
            "description": "A self-contained page (no external requests) that polls "
                           "`/dashboard/data/` every 5 seconds.",
            "tags": ["operations"],
            "responses": {"200": {"description": "The page",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}},
        }},
        "/dashboard/data/": {"get": {
            "summary": "What the dashboard shows, over every partition",
            "tags": ["operations"],
            "parameters": [{"name": "local", "in": "query", "required": False,
                            "description": "1: only this worker's partitions, as a "
                                           "DashboardPart (what workers ask each other)",
                            "schema": {"type": "string", "enum": ["0", "1"], "default": "0"}}],
            "responses": {
                "200": {"description": "DashboardData; with local=1, DashboardPart",
                        "content": {"application/json": {
                            "schema": {"oneOf": [_ref("DashboardData"), _ref("DashboardPart")]},
                            "examples": {"cluster": {"value": _DATA_EXAMPLE},
                                         "local": {"value": _PART_EXAMPLE}}}}},
                "400": _error(400, "local must be 0 or 1, got 'yes'", "Bad parameter"),
                "500": _INTERNAL,
            },
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics of the answering worker's partitions",
            "description": "Text exposition format 0.0.4. Scrape every worker: series carry a "
                           "`partition` label, so sums over workers are exact.",
            "tags": ["operations"],
            "responses": {"200": {"description": "Metrics", "content": {
                "text/plain; version=0.0.4": {"schema": {"type": "string"},
                                              "example": _METRICS_EXAMPLE}}},
                          "500": _INTERNAL},
        }},
        "/healthz": {"get": {
            "summary": "Liveness: the process runs and its event loop answers",
            "description": "Never behind a token.", "tags": ["probes"], "security": [],
            "responses": {"200": _json({"type": "object"},
                                       {"status": "ok", "uptime_seconds": 42.0}, "Alive")},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: partitions assigned, tables recovered, consuming",
            "description": "Never behind a token. 503 lists the checks that fail.",
            "tags": ["probes"], "security": [],
            "responses": {
                "200": _json(_ref("Readiness"), {**_READY_EXAMPLE, "ready": True,
                                                 "reasons": []}, "Ready"),
                "503": _json(_ref("Readiness"), _READY_EXAMPLE, "Not ready, and why"),
            },
        }},
        "/login": {
            "get": {
                "summary": "The login form (when TXSTREAM_WEB_TOKEN is set)",
                "tags": ["access"], "security": [],
                "parameters": [{"name": "next", "in": "query", "required": False,
                                "description": "A path on this server to return to",
                                "schema": {"type": "string", "default": "/dashboard/"}}],
                "responses": {"200": {"description": "The form", "content": {
                    "text/html": {"schema": {"type": "string"}}}},
                    "404": _error(404, "no login: this server has no TXSTREAM_WEB_TOKEN",
                                  "No token is set")},
            },
            "post": {
                "summary": "Log in with the token; sets an HttpOnly session cookie",
                "tags": ["access"], "security": [],
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["token"],
                        "properties": {"token": {"type": "string"},
                                       "next": {"type": "string"}}}}}},
                "responses": {"303": {"description": "Logged in: on to `next`"},
                              "401": {"description": "Wrong token: the form again"}},
            },
        },
        "/logout": {"post": {
            "summary": "End the session", "tags": ["access"], "security": [],
            "responses": {"303": {"description": "Session cookie cleared: on to /login"}},
        }},
        OPENAPI_PATH: {"get": {
            "summary": "This document", "tags": ["operations"],
            "responses": {"200": {"description": "OpenAPI 3.0",
                                  "content": {"application/json": {
                                      "schema": {"type": "object"}}}}},
        }},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "txstream",
            "version": "0.1.0",
            "description": "Real-time transaction monitoring: event-time windows, sessions "
                           "and alerts per customer, served by any worker. Times are ISO 8601 "
                           "UTC; amounts are PLN, exact to the cent.",
        },
        "servers": [{"url": "http://127.0.0.1:6066", "description": "a local worker"}],
        "paths": paths,
        # With TXSTREAM_WEB_TOKEN set, every operation but the probes and the login needs
        # the token (or the login's session cookie); /metrics has its own, if any.
        "security": [{"bearer": []}, {"session": []}],
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "TXSTREAM_WEB_TOKEN (TXSTREAM_METRICS_TOKEN for /metrics)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "txstream_session",
                        "description": "Set by POST /login"},
        }},
    }


def install_openapi(app: TxApp) -> None:
    """Serve ``GET /openapi.json``."""
    document = openapi_document()

    @app.page(OPENAPI_PATH)
    class OpenAPIView(View):
        """The OpenAPI 3 description of this service."""

        async def get(self, request: Request) -> Response:
            return self.json(document)
