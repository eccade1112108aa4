"""Wire encoders of output records: byte for byte the JSON of DESIGN.md's dict form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from app.records.outputs import (
    conflict_reason,
    encode_alert,
    encode_late,
    encode_session,
    encode_window_result,
    money_text,
    window_result_records,
    window_run_records,
)
from app.records.times import format_time
from app.records.transaction import Transaction
from tables.outputs import (
    Alert,
    DuplicateConflict,
    LateEvent,
    Outputs,
    SessionResult,
    SlidingRun,
    WindowResult,
    WindowRun,
)

CENTS = st.integers(min_value=1, max_value=10**13)
TIMES = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999)
CUSTOMERS = st.integers(min_value=1, max_value=2**63 - 1)


def _iso(ms: int) -> str:
    """The reference rendering of a time: datetime arithmetic, no caches."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def _average(total: int, count: int) -> float:
    """Half-even average in PLN, through Decimal."""
    from decimal import ROUND_HALF_EVEN, Decimal

    exact = (Decimal(total) / count).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(exact) / 100


def _dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


@given(TIMES)
def test_format_time_matches_datetime(ms: int) -> None:
    assert format_time(ms) == _iso(ms)


@given(st.integers(min_value=0, max_value=10**14))
def test_money_text_is_the_float_repr_orjson_writes(cents: int) -> None:
    assert money_text(cents) == orjson.dumps(cents / 100).decode()


@given(CUSTOMERS, TIMES, st.lists(CENTS, min_size=1, max_size=6),
       st.sampled_from(["tumbling", "hopping", "sliding"]))
def test_window_result(customer: int, start: int, amounts: list[int], kind: str) -> None:
    count, total, lo, hi = len(amounts), sum(amounts), min(amounts), max(amounts)
    result = WindowResult(kind, customer, start, start + 300_000, count, total, lo, hi)
    assert encode_window_result(result) == _dumps({
        "result_id": f"{kind}:{customer}:{start}", "kind": kind, "customer_id": customer,
        "start": _iso(start), "end": _iso(start + 300_000), "count": count,
        "total": total / 100, "min": lo / 100, "max": hi / 100,
        "average": _average(total, count)})


def test_empty_window_result_has_null_amounts() -> None:
    result = WindowResult("hopping", 7, 0, 600_000, 0, 0, 0, 0)
    assert orjson.loads(encode_window_result(result)) == {
        "result_id": "hopping:7:0", "kind": "hopping", "customer_id": 7,
        "start": "1970-01-01T00:00:00Z", "end": "1970-01-01T00:10:00Z", "count": 0,
        "total": 0.0, "min": None, "max": None, "average": None}


@given(CUSTOMERS, TIMES, st.integers(min_value=1, max_value=1000), CENTS, CENTS,
       st.text(min_size=1, max_size=40), TIMES)
def test_alert(customer: int, start: int, count: int, total: int, threshold: int, tx_id: str,
               event_time: int) -> None:
    alert = Alert(customer, start, start + 300_000, count, total, threshold, tx_id, event_time)
    assert encode_alert(alert) == _dumps({
        "alert_id": f"{customer}:{start}", "customer_id": customer,
        "window_start": _iso(start), "window_end": _iso(start + 300_000),
        "total": total / 100, "count": count, "threshold": threshold / 100, "tx_id": tx_id,
        "event_time": _iso(event_time)})


def test_alert_escapes_the_tx_id() -> None:
    alert = Alert(1, 0, 300_000, 1, 500_001, 500_000, 'a"b\\c\n', 5)
    assert orjson.loads(encode_alert(alert))["tx_id"] == 'a"b\\c\n'


@given(CUSTOMERS, TIMES, st.integers(min_value=0, max_value=10**9),
       st.integers(min_value=1, max_value=1000), CENTS, CENTS, CENTS)
def test_session(customer: int, start: int, length: int, count: int, total: int, lo: int,
                 hi: int) -> None:
    session = SessionResult(customer, start, start + length, count, total, lo, hi)
    assert encode_session(session) == _dumps({
        "session_id": f"{customer}:{start}", "customer_id": customer, "start": _iso(start),
        "end": _iso(start + length), "count": count, "total": total / 100, "min": lo / 100,
        "max": hi / 100, "duration": length / 1000})


def test_late_event() -> None:
    tx = Transaction("t-1", 42, 24_999, "PLN", 1_773_300_000_500)
    late = LateEvent(17, tx, ("tumbling", "hopping"), 1_773_300_600_000)
    assert orjson.loads(encode_late(late, 3)) == {
        "late_id": "3:17", "reason": "window closed: tumbling, hopping",
        "kinds": ["tumbling", "hopping"], "watermark": "2026-03-12T07:30:00Z", "partition": 3,
        "offset": 17, "tx_id": "t-1", "customer_id": 42, "amount": 249.99, "currency": "PLN",
        "event_time": "2026-03-12T07:20:00.500Z"}


@given(st.lists(st.tuples(CUSTOMERS, st.sampled_from([0, 120_000, 240_000]),
                          st.sampled_from([600_000, 720_000]), st.lists(CENTS, min_size=1,
                                                                         max_size=3)),
                max_size=12))
def test_window_result_records_of_a_run_match_one_by_one(
        rows: list[tuple[int, int, int, list[int]]]) -> None:
    results = [WindowResult("hopping", customer, 1_773_300_000_000 + start,
                            1_773_300_000_000 + start + length, len(amounts), sum(amounts),
                            min(amounts), max(amounts))
               for customer, start, length, amounts in rows]
    records = list(window_result_records(results))
    assert records == [
        (str(r.customer_id).encode(), encode_window_result(r), r.end_ms) for r in results]
    assert [orjson.loads(value)["result_id"] for _, value, _ in records] == [
        r.result_id for r in results]


@given(st.lists(st.tuples(st.sampled_from(["tumbling", "hopping"]), TIMES,
                          st.lists(st.tuples(CUSTOMERS, st.lists(CENTS, max_size=4)),
                                   max_size=5)),
                max_size=4))
def test_window_run_records_match_each_result_encoded_alone(
        runs: list[tuple[str, int, list[tuple[int, list[int]]]]]) -> None:
    window_runs = [
        WindowRun(kind, start, start + 300_000, [
            (customer, [start, len(amounts), sum(amounts), min(amounts, default=0),
                        max(amounts, default=0), 1], None)
            for customer, amounts in windows])
        for kind, start, windows in runs]
    expected = [(str(r.customer_id).encode(), encode_window_result(r), r.end_ms)
                for run in window_runs for r in run.results()]
    assert list(window_run_records(window_runs)) == expected
    assert [r.count for run in window_runs for r in run.results()] == [
        len(amounts) for _, _, windows in runs for _, amounts in windows]


def test_outputs_are_equal_whether_results_come_in_runs_or_alone() -> None:
    entry = [1_000, 2, 700, 300, 400, 1]
    in_run = Outputs(runs=[WindowRun("tumbling", 1_000, 301_000, [(7, entry, None)])])
    alone = Outputs(results=[WindowResult("tumbling", 7, 1_000, 301_000, 2, 700, 300, 400)])
    other = Outputs(results=[WindowResult("tumbling", 7, 1_000, 301_000, 2, 700, 300, 401)])
    assert (in_run == alone, in_run == other, in_run.window_results()) == (
        True, False, alone.results)


@given(st.sampled_from([600_000, 60_000, 1_500, 999]),
       st.lists(st.tuples(CUSTOMERS, TIMES, st.lists(CENTS, min_size=1, max_size=4)),
                max_size=8))
def test_sliding_run_records_match_each_result_encoded_alone(
        size: int, rows: list[tuple[int, int, list[int]]]) -> None:
    run = SlidingRun("sliding", size, [
        (customer, end, len(amounts), sum(amounts), min(amounts), max(amounts))
        for customer, end, amounts in rows])
    expected = [(str(r.customer_id).encode(), encode_window_result(r), r.end_ms)
                for r in run.results()]
    assert list(window_run_records([run])) == expected
    assert [(r.start_ms, r.end_ms) for r in run.results()] == [
        (end - size, end) for _, end, _ in rows]


@given(st.integers(min_value=0, max_value=10**13))
def test_session_duration_text_is_the_float_repr_orjson_writes(ms: int) -> None:
    session = SessionResult(1, 0, ms, 1, 100, 100, 100)
    assert orjson.loads(encode_session(session))["duration"] == ms / 1000
    assert encode_session(session).endswith(b'"duration":' + orjson.dumps(ms / 1000) + b"}")


def test_conflict_reason__names_the_earlier_offset_and_each_field_that_differs() -> None:
    t = 1_773_324_060_000  # 2026-03-12T14:01:00Z
    again = Transaction("a7", 1, 12_000, "PLN", t)
    moved = Transaction("a7", 2, 10_000, "PLN", t + 30_000)

    def reason(tx: Transaction) -> str:
        return conflict_reason(DuplicateConflict(
            20, tx, earlier_offset=12, earlier_customer_id=1, earlier_amount_cents=10_000,
            earlier_event_time_ms=t))

    assert [reason(again), reason(moved)] == [
        "tx_id 'a7' was already applied at offset 12 with other content "
        "(amount 100.00, not 120.00)",
        "tx_id 'a7' was already applied at offset 12 with other content "
        "(customer_id 1, not 2; event_time 2026-03-12T14:01:00Z, not 2026-03-12T14:01:30Z)",
    ]
