"""Output records read back from their topics: validated before anything uses them.

Anyone who can write to a topic txstream reads back (``alerts``, say) can put anything
there; what is not one of our records is skipped with a reason, never served or trusted.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from app.exceptions import InvalidRecord

from .times import iso_to_ms

__all__ = ["ReadAlert", "decode_alert"]

#: An alert as read back: its JSON fields (exactly those txstream writes) and its event time.
ReadAlert = tuple[int, dict[str, Any]]

_MAX_ID = 64
_MAX_TX_ID = 128


def _text(obj: dict[str, Any], name: str, limit: int) -> str:
    value = obj.get(name)
    if type(value) is not str or not 0 < len(value) <= limit:
        raise InvalidRecord(f"{name} is not a string of 1 to {limit} characters")
    return value


def _time(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    ms = iso_to_ms(value) if type(value) is str else None
    if ms is None:
        raise InvalidRecord(f"{name} is not an ISO 8601 time")
    return ms


def _count(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if type(value) is not int or value < 1:
        raise InvalidRecord(f"{name} is not a positive integer")
    return value


def _amount(obj: dict[str, Any], name: str) -> float:
    value = obj.get(name)
    if type(value) is int or type(value) is float:
        number = float(value)
        if math.isfinite(number) and number >= 0:
            return value
    raise InvalidRecord(f"{name} is not a non-negative number")


def decode_alert(value: bytes | None) -> ReadAlert:
    """``(event_time_ms, alert)`` of an ``alerts`` record, or InvalidRecord saying why not.

    The alert holds exactly the fields txstream writes (anything else in the record is
    dropped), each of the type it writes.
    """
    if value is None:
        raise InvalidRecord("empty value")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRecord("not JSON") from None
    if type(obj) is not dict:
        raise InvalidRecord("not a JSON object")
    event_ms = _time(obj, "event_time")
    _time(obj, "window_start")
    _time(obj, "window_end")
    alert = {
        "alert_id": _text(obj, "alert_id", _MAX_ID),
        "customer_id": _count(obj, "customer_id"),
        "window_start": obj["window_start"],
        "window_end": obj["window_end"],
        "total": _amount(obj, "total"),
        "count": _count(obj, "count"),
        "threshold": _amount(obj, "threshold"),
        "tx_id": _text(obj, "tx_id", _MAX_TX_ID),
        "event_time": obj["event_time"],
    }
    return event_ms, alert
