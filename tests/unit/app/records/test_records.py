"""Unit tests for app.records: parsing, validation reasons, wire encoding, money and time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.exceptions import InvalidRecord
from app.records.money import cents_to_float_exact, cents_to_json_number, format_cents
from app.records.times import format_time, parse_time
from app.records.transaction import (
    MAX_AMOUNT_CENTS,
    MAX_EVENT_TIME_MS,
    MIN_EVENT_TIME_MS,
    Transaction,
    encode_transaction,
    parse_transaction,
    transaction_key,
)

# 2026-03-12T14:23:45Z
T0 = 1_773_325_425_000


def record(**changes: Any) -> bytes:
    """A valid wire record with some fields changed (a value of ... removes the field)."""
    fields: dict[str, Any] = {
        "tx_id": "7f0c",
        "customer_id": 1234,
        "amount": 249.99,
        "currency": "PLN",
        "event_time": "2026-03-12T14:23:45Z",
    }
    fields.update(changes)
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


def reason(value: bytes | None, key: bytes | None = b"1234") -> str:
    with pytest.raises(InvalidRecord) as info:
        parse_transaction(value, key)
    assert str(info.value) == info.value.reason
    return info.value.reason


def test_parse__valid() -> None:
    assert parse_transaction(record(), b"1234") == Transaction("7f0c", 1234, 24999, "PLN", T0)


def test_parse__extra_fields_ignored() -> None:
    tx = parse_transaction(record(channel="app"), b"1234")
    assert tx == Transaction("7f0c", 1234, 24999, "PLN", T0)


def test_parse__literal_wire_text() -> None:
    value = (
        b'{"tx_id": "7f0c", "customer_id": 1234, "amount": 249.99, "currency": "PLN",'
        b' "event_time": "2026-03-12T14:23:45Z"}'
    )
    assert parse_transaction(value, b"1234") == Transaction("7f0c", 1234, 24999, "PLN", T0)


# -- not JSON, not an object, missing fields ------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"{",
        b"not json",
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": 1e309}',
        b"\xff\xfe",
    ],
)
def test_not_json(value: bytes | None) -> None:
    assert reason(value).startswith("not JSON: ")


def test_not_json__empty_value() -> None:
    assert reason(None) == "not JSON: empty value"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"[1, 2]", "not a JSON object: got array"),
        (b'"text"', "not a JSON object: got string"),
        (b"42", "not a JSON object: got number"),
        (b"null", "not a JSON object: got null"),
        (b"true", "not a JSON object: got boolean"),
    ],
)
def test_not_an_object(value: bytes, expected: str) -> None:
    assert reason(value) == expected


def test_missing_field() -> None:
    assert reason(record(amount=...)) == "missing field: amount"


def test_missing_fields__all_listed_in_order() -> None:
    assert reason(record(event_time=..., tx_id=...)) == "missing fields: tx_id, event_time"


def test_empty_object() -> None:
    assert reason(b"{}") == "missing fields: tx_id, customer_id, amount, currency, event_time"


# -- field types and values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"tx_id": 7}, "tx_id must be a string, got 7"),
        ({"tx_id": None}, "tx_id must be a string, got null"),
        ({"tx_id": ""}, "tx_id is empty"),
        ({"tx_id": "x" * 129}, "tx_id longer than 128 characters"),
        ({"customer_id": "1234"}, 'customer_id must be a positive integer, got "1234"'),
        ({"customer_id": True}, "customer_id must be a positive integer, got true"),
        ({"customer_id": 0}, "customer_id must be a positive integer, got 0"),
        ({"customer_id": -5}, "customer_id must be a positive integer, got -5"),
        ({"customer_id": 12.0}, "customer_id must be a positive integer, got 12.0"),
        ({"customer_id": 2**63}, "customer_id must be a positive integer, got 9223372036854775808"),
        ({"amount": "249.99"}, 'amount must be a JSON number, got "249.99"'),
        ({"amount": True}, "amount must be a JSON number, got true"),
        ({"amount": None}, "amount must be a JSON number, got null"),
        ({"amount": [1]}, "amount must be a JSON number, got [1]"),
        ({"amount": 0}, "amount must be positive, got 0"),
        ({"amount": 0.0}, "amount must be positive, got 0.0"),
        ({"amount": -0.0}, "amount must be positive, got -0.0"),
        ({"amount": -5}, "amount must be positive, got -5"),
        ({"amount": -249.99}, "amount must be positive, got -249.99"),
        ({"amount": 1.005}, "amount has more than 2 decimal places: 1.005"),
        ({"amount": 0.001}, "amount has more than 2 decimal places: 0.001"),
        ({"amount": 1.5e-07}, "amount has more than 2 decimal places: 1.5E-7"),
        ({"amount": 10_000_000.01}, "amount over 10000000 PLN: 10000000.01"),
        ({"amount": 10_000_001}, "amount over 10000000 PLN: 10000001"),
        ({"amount": 1e16}, f"amount over 10000000 PLN: {orjson.dumps(1e16).decode()}"),
        ({"currency": "EUR"}, 'unknown currency "EUR" (only PLN)'),
        ({"currency": "pln"}, 'unknown currency "pln" (only PLN)'),
        ({"currency": None}, "unknown currency null (only PLN)"),
        ({"event_time": "yesterday"}, 'event_time is not an ISO 8601 time: "yesterday"'),
        ({"event_time": ""}, 'event_time is not an ISO 8601 time: ""'),
        (
            {"event_time": "2026-13-01T00:00:00Z"},
            'event_time is not an ISO 8601 time: "2026-13-01T00:00:00Z"',
        ),
        (
            {"event_time": 1.7e12},
            "event_time must be an ISO 8601 string or integer epoch milliseconds,"
            " got 1700000000000.0",
        ),
        (
            {"event_time": True},
            "event_time must be an ISO 8601 string or integer epoch milliseconds, got true",
        ),
        (
            {"event_time": None},
            "event_time must be an ISO 8601 string or integer epoch milliseconds, got null",
        ),
        (
            {"event_time": "1999-12-31T23:59:59.999Z"},
            'absurd event time "1999-12-31T23:59:59.999Z" (must be in 2000-01-01 .. 2100-01-01)',
        ),
        (
            {"event_time": "2100-01-01T00:00:00Z"},
            'absurd event time "2100-01-01T00:00:00Z" (must be in 2000-01-01 .. 2100-01-01)',
        ),
        (
            {"event_time": 1_773_325_425},
            "absurd event time 1773325425 (must be in 2000-01-01 .. 2100-01-01)",
        ),
        ({"event_time": 0}, "absurd event time 0 (must be in 2000-01-01 .. 2100-01-01)"),
        ({"event_time": -1}, "absurd event time -1 (must be in 2000-01-01 .. 2100-01-01)"),
    ],
)
def test_invalid_field(changes: dict[str, Any], expected: str) -> None:
    assert reason(record(**changes)) == expected


def test_long_value_is_cut_in_the_reason() -> None:
    assert reason(record(currency="X" * 100)) == (
        'unknown currency "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX... (only PLN)'
    )


def test_first_problem_wins__fields_checked_in_order() -> None:
    assert reason(record(tx_id="", amount=0)) == "tx_id is empty"


# -- amounts: exact cents --------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        (0.01, 1),
        (0.1, 10),
        (0.29, 29),
        (1, 100),
        (1.1, 110),
        (249.99, 24999),
        (1.15, 115),
        (4.35, 435),
        (2648.68, 264868),
        (9_999_999.99, 999_999_999),
        (10_000_000, 1_000_000_000),
        (10_000_000.0, 1_000_000_000),
    ],
)
def test_amount__exact_cents(amount: float, cents: int) -> None:
    assert parse_transaction(record(amount=amount), b"1234").amount_cents == cents


def test_amount__literal_text_with_trailing_zeros() -> None:
    # 249.990 and 2.4999e2 are the same JSON number as 249.99.
    for text in (b"249.990", b"2.4999e2", b"24999e-2"):
        value = record(amount=0).replace(b'"amount":0', b'"amount":' + text)
        assert parse_transaction(value, b"1234").amount_cents == 24999


# -- event times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_time", "ms"),
    [
        ("2026-03-12T14:23:45Z", T0),
        ("2026-03-12T14:23:45", T0),
        ("2026-03-12T14:23:45+00:00", T0),
        ("2026-03-12T16:23:45+02:00", T0),
        ("2026-03-12T09:23:45-05:00", T0),
        ("2026-03-12 14:23:45Z", T0),
        ("2026-03-12T14:23:45.123Z", T0 + 123),
        ("2026-03-12T14:23:45.1239Z", T0 + 123),
        ("2026-03-12T14:23:45.999999Z", T0 + 999),
        ("2026-03-12T14:23:45.5", T0 + 500),
        ("2026-03-12", T0 - (14 * 3600 + 23 * 60 + 45) * 1000),
        (T0, T0),
        (T0 + 7, T0 + 7),
        ("2000-01-01T00:00:00Z", MIN_EVENT_TIME_MS),
        (MIN_EVENT_TIME_MS, MIN_EVENT_TIME_MS),
        (MAX_EVENT_TIME_MS - 1, MAX_EVENT_TIME_MS - 1),
        ("2099-12-31T23:59:59.999Z", MAX_EVENT_TIME_MS - 1),
    ],
)
def test_event_time(event_time: str | int, ms: int) -> None:
    assert parse_transaction(record(event_time=event_time), b"1234").event_time_ms == ms


def test_event_time_bounds() -> None:
    assert (MIN_EVENT_TIME_MS, MAX_EVENT_TIME_MS) == (946_684_800_000, 4_102_444_800_000)


# -- key -------------------------------------------------------------------------------


def test_key_missing() -> None:
    assert reason(record(), key=None) == "key missing (must be the customer_id as text, 1234)"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"4321", "key '4321' does not match customer_id 1234"),
        (b"01234", "key '01234' does not match customer_id 1234"),
        (b" 1234", "key ' 1234' does not match customer_id 1234"),
        (b"", "key '' does not match customer_id 1234"),
    ],
)
def test_key_mismatch(key: bytes, expected: str) -> None:
    assert reason(record(), key=key) == expected


def test_key_checked_after_fields() -> None:
    # A record with a bad field and a bad key is reported for the field.
    assert reason(record(currency="EUR"), key=b"1") == 'unknown currency "EUR" (only PLN)'


# -- encoding --------------------------------------------------------------------------


def test_encode() -> None:
    tx = Transaction("7f0c", 1234, 24999, "PLN", T0)
    assert encode_transaction(tx) == (
        b'{"tx_id":"7f0c","customer_id":1234,"amount":249.99,"currency":"PLN",'
        b'"event_time":"2026-03-12T14:23:45Z"}'
    )
    assert transaction_key(tx) == b"1234"


def test_encode__millis_and_whole_amount() -> None:
    tx = Transaction("a", 7, 500, "PLN", T0 + 120)
    assert orjson.loads(encode_transaction(tx)) == {
        "tx_id": "a",
        "customer_id": 7,
        "amount": 5.0,
        "currency": "PLN",
        "event_time": "2026-03-12T14:23:45.120Z",
    }


transactions = st.builds(
    Transaction,
    tx_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=128),
    customer_id=st.integers(min_value=1, max_value=2**63 - 1),
    amount_cents=st.integers(min_value=1, max_value=1_000_000_000),
    currency=st.just("PLN"),
    event_time_ms=st.integers(min_value=MIN_EVENT_TIME_MS, max_value=MAX_EVENT_TIME_MS - 1),
)


@given(transactions)
def test_round_trip(tx: Transaction) -> None:
    assert parse_transaction(encode_transaction(tx), transaction_key(tx)) == tx


# -- money helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (264868, "2648.68"),
        (500, "5.00"),
        (5, "0.05"),
        (0, "0.00"),
        (-5, "-0.05"),
        (-12345, "-123.45"),
    ],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text
    assert str(cents_to_json_number(cents)) == text


def test_cents_to_json_number() -> None:
    assert cents_to_json_number(264868) == Decimal("2648.68")
    assert cents_to_json_number(500).as_tuple().exponent == -2


def test_cents_to_float_exact() -> None:
    assert cents_to_float_exact(264868) == 2648.68
    assert orjson.dumps([cents_to_float_exact(c) for c in (264868, 500, 1, 3017487)]) == (
        b"[2648.68,5.0,0.01,30174.87]"
    )


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_cents_to_float_exact__prints_the_exact_cents(cents: int) -> None:
    number = cents_to_float_exact(cents)
    assert number == float(cents_to_json_number(cents))
    assert Decimal(repr(number)) == cents_to_json_number(cents)


# -- time helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (T0, "2026-03-12T14:23:45Z"),
        (T0 + 123, "2026-03-12T14:23:45.123Z"),
        (T0 + 5, "2026-03-12T14:23:45.005Z"),
        (0, "1970-01-01T00:00:00Z"),
        (MIN_EVENT_TIME_MS, "2000-01-01T00:00:00Z"),
    ],
)
def test_format_time(ms: int, text: str) -> None:
    assert format_time(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-03-12T14:23:45Z", T0),
        ("2026-03-12T14:23:45.123Z", T0 + 123),
        ("2026-03-12T15:23:45+01:00", T0),
        (" 2026-03-12T14:23:45 ", T0),
        ("1773325425000", T0),
        ("2026-03-12", T0 - 51_825_000),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time(text) == ms


def test_parse_time__invalid() -> None:
    with pytest.raises(ValueError) as info:
        parse_time("noon")
    assert str(info.value) == (
        "not a time: 'noon' (write ISO 8601 like 2026-03-12T14:23:45Z or 2026-03-12, "
        "or epoch milliseconds)"
    )


@given(st.integers(min_value=MIN_EVENT_TIME_MS, max_value=MAX_EVENT_TIME_MS - 1))
def test_time_round_trip(ms: int) -> None:
    assert parse_time(format_time(ms)) == ms


# -- fast paths: the same answers as the general ones ------------------------------------


def _reference_ms(text: str) -> int | None:
    """ISO 8601 to epoch ms through datetime alone (what the fast path must agree with)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@given(st.integers(min_value=MIN_EVENT_TIME_MS // 1000, max_value=MAX_EVENT_TIME_MS // 1000 - 1),
       st.integers(min_value=0, max_value=59))
def test_event_time__minute_cache_agrees_with_datetime(second: int, other: int) -> None:
    text = format_time(second * 1000)
    same_minute = f"{text[:17]}{other:02d}Z"
    for each in (text, text, same_minute):  # a miss, then hits from the cache
        assert parse_transaction(record(event_time=each), b"1234").event_time_ms == \
            _reference_ms(each)


@pytest.mark.parametrize("seconds", ["60", "6a", "²³", " 1", "+1", "-1"])
def test_event_time__cached_minute_with_bad_seconds_is_invalid(seconds: str) -> None:
    parse_transaction(record(event_time="2026-03-12T07:20:00Z"), b"1234")  # caches the minute
    with pytest.raises(InvalidRecord, match="not an ISO 8601 time"):
        parse_transaction(record(event_time=f"2026-03-12T07:20:{seconds}Z"), b"1234")


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_CENTS))
def test_amount__every_cent_amount_is_exact(cents: int) -> None:
    wire = record(amount=...).replace(b'"currency"', b'"amount":%s,"currency"'
                                      % repr(cents / 100).encode())
    assert parse_transaction(wire, b"1234").amount_cents == cents


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999.999"), places=3)
       .filter(lambda d: d != d.quantize(Decimal("0.01"))))
def test_amount__three_decimals_are_invalid(amount: Decimal) -> None:
    with pytest.raises(InvalidRecord, match="more than 2 decimal places"):
        parse_transaction(record(amount=float(amount)), b"1234")
