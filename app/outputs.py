"""Wire format of output records: alerts, window results, sessions, late events, dead letters."""

from __future__ import annotations

from typing import Any

import orjson

from tables.aggregate import average_in_cents
from tables.outputs import Alert, LateEvent, SessionResult, WindowResult

from .records import cents_to_float_exact, format_time

__all__ = [
    "dead_letter_headers",
    "encode_alert",
    "encode_late",
    "encode_session",
    "encode_window_result",
    "money",
    "window_json",
]


def money(cents: int) -> float:
    """Cents as a JSON number that prints exactly (``264868`` -> ``2648.68``)."""
    return cents_to_float_exact(cents)


def window_json(start_ms: int, end_ms: int, count: int, total: int, lo: int, hi: int,
                **extra: Any) -> dict[str, Any]:
    """A window as DESIGN.md's JSON object: ISO UTC bounds, exact amounts, derived average."""
    data: dict[str, Any] = {
        "start": format_time(start_ms),
        "end": format_time(end_ms),
        "count": count,
        "total": money(total),
        "min": money(lo) if count else None,
        "max": money(hi) if count else None,
        "average": money(average_in_cents(total, count)) if count else None,
    }
    data.update(extra)
    return data


def encode_window_result(result: WindowResult) -> bytes:
    """One closed window's final aggregate (deterministic ``result_id``)."""
    data = window_json(result.start_ms, result.end_ms, result.count, result.total,
                       result.min, result.max)
    data = {"result_id": result.result_id, "kind": result.kind,
            "customer_id": result.customer_id, **data}
    return orjson.dumps(data)


def encode_alert(alert: Alert) -> bytes:
    """An alert: the customer, the window, its total when it passed the threshold."""
    return orjson.dumps({
        "alert_id": alert.alert_id,
        "customer_id": alert.customer_id,
        "window_start": format_time(alert.window_start_ms),
        "window_end": format_time(alert.window_end_ms),
        "total": money(alert.total),
        "count": alert.count,
        "threshold": money(alert.threshold),
        "tx_id": alert.tx_id,
        "event_time": format_time(alert.event_time_ms),
    })


def encode_session(session: SessionResult) -> bytes:
    """A closed session: first and last event, count, amounts, duration in seconds."""
    return orjson.dumps({
        "session_id": session.session_id,
        "customer_id": session.customer_id,
        "start": format_time(session.start_ms),
        "end": format_time(session.end_ms),
        "count": session.count,
        "total": money(session.total),
        "min": money(session.min),
        "max": money(session.max),
        "duration": session.duration_ms / 1000,
    })


def encode_late(late: LateEvent, partition: int) -> bytes:
    """A late event: the transaction, which window kinds had closed, the watermark then."""
    tx = late.tx
    return orjson.dumps({
        "late_id": f"{partition}:{late.offset}",
        "reason": "window closed: " + ", ".join(late.kinds),
        "kinds": list(late.kinds),
        "watermark": format_time(late.watermark_ms),
        "partition": partition,
        "offset": late.offset,
        "tx_id": tx.tx_id,
        "customer_id": tx.customer_id,
        "amount": money(tx.amount_cents),
        "currency": "PLN",
        "event_time": format_time(tx.event_time_ms),
    })


def dead_letter_headers(reason: str, topic: str, partition: int,
                        offset: int) -> list[tuple[str, bytes]]:
    """Headers of a dead letter; its value is the original bytes, untouched."""
    return [
        ("txstream-reason", reason.encode()),
        ("txstream-source", f"{topic}/{partition}/{offset}".encode()),
    ]
