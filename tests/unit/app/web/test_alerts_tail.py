"""The alerts tail keeps only alerts as txstream writes them; the rest is skipped and counted."""

from __future__ import annotations

import orjson
import pytest

from app.records.outputs import encode_alert
from app.skipped import SkippedRecords
from app.web.alerts_tail import AlertsTail
from tables.outputs import Alert

T0 = 1_773_324_000_000


def _alert(customer: int, minute: int) -> bytes:
    start = T0 + minute * 300_000
    return encode_alert(Alert(customer, start, start + 300_000, 2, 500_001, 500_000,
                              f"t{customer}", start + 1_000))


FOREIGN = [
    b'{"alert_id": ["x"]}', b'{"alert_id": "evil-1"}', b"not json", b"[]", b"null", None,
    b'{"alert_id": {"a": 1}, "event_time": "2026-03-12T14:00:00Z"}',
    orjson.dumps({**orjson.loads(_alert(1, 0)), "event_time": "yesterday"}),
    orjson.dumps({**orjson.loads(_alert(1, 0)), "total": "lots"}),
    orjson.dumps({**orjson.loads(_alert(1, 0)), "count": True}),
    orjson.dumps({**orjson.loads(_alert(1, 0)), "alert_id": "x" * 65}),
]


def test_foreign_records_are_skipped_counted_and_never_served() -> None:
    skipped = SkippedRecords()
    tail = AlertsTail("127.0.0.1:9", "t1-alerts", skipped=skipped)
    tail._add(_alert(1, 0), "0/0")
    for offset, value in enumerate(FOREIGN, start=1):
        tail._add(value, f"0/{offset}")
    tail._add(_alert(2, 1), "0/99")
    assert [a["alert_id"] for a in tail.latest(10)] == [f"2:{T0 + 300_000}", f"1:{T0}"]
    assert tail.latest(10)[1] == orjson.loads(_alert(1, 0))
    assert len(tail) == 2
    assert skipped.snapshot() == {"t1-alerts": len(FOREIGN)}


def test_extra_fields_of_a_record_are_not_served() -> None:
    tail = AlertsTail("127.0.0.1:9", "alerts")
    tail._add(orjson.dumps({**orjson.loads(_alert(3, 0)), "script": "<script>x</script>"}))
    assert "script" not in tail.latest(1)[0]


@pytest.mark.parametrize("keep", [1, 3])
def test_only_the_last_alerts_are_kept(keep: int) -> None:
    tail = AlertsTail("127.0.0.1:9", "alerts", keep=keep)
    for minute in range(5):
        tail._add(_alert(minute + 1, minute))
    assert len(tail) == keep
    assert tail.latest(1)[0]["customer_id"] == 5
