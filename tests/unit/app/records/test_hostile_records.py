"""Hostile records: whatever the bytes, a record is accepted or rejected with a reason.

Both parsers are checked (the compiled one where it was built, and the Python rules), over
arbitrary bytes, arbitrary JSON values in every field, and valid records with one part broken.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.exceptions import InvalidRecord
from app.records.decode import Decoder
from app.records.transaction import (
    CURRENCY,
    MAX_AMOUNT_CENTS,
    MAX_CUSTOMER_ID,
    MAX_EVENT_TIME_MS,
    MAX_TX_ID_LENGTH,
    MIN_EVENT_TIME_MS,
    Transaction,
    parse_transaction,
    parse_transaction_python,
)

Parser = Callable[[bytes | None, bytes | None], Transaction]
PARSERS = [pytest.param(parse_transaction, id="compiled-then-python"),
           pytest.param(parse_transaction_python, id="python")]
FIELDS = ("tx_id", "customer_id", "amount", "currency", "event_time")

#: Any JSON value, numbers of every size included (beyond 64 bits, near the float limits).
json_values = st.recursive(
    st.none() | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, 1.7976931348623157e308, 1.8e306, 5e-324, -0.0, 1e15, 1e16,
                       99999999.99, 10000000.01, 0.005, 2**63, 2**64, -(2**63)])
    | st.text(max_size=40)
    | st.sampled_from(["2026-12-03T01:00:00Z", "2099-12-31T23:59:59Z", "0001-01-01T00:00:00+23:59",
                       "9999-12-31T23:59:59-23:59", "2026-02-30T00:00:00Z", "PLN", "", "\x00"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
MISSING = object()


@st.composite
def hostile_objects(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A JSON object whose every field is missing, plausible or any JSON value, and a key."""
    plausible = {"tx_id": st.text(min_size=1, max_size=MAX_TX_ID_LENGTH + 2),
                 "customer_id": st.integers(min_value=-5, max_value=MAX_CUSTOMER_ID + 5),
                 "amount": st.floats(min_value=0, allow_nan=False) | st.integers(),
                 "currency": st.sampled_from([CURRENCY, "EUR", "pln"]),
                 "event_time": st.integers(MIN_EVENT_TIME_MS - 5, MAX_EVENT_TIME_MS + 5)}
    obj: dict[str, Any] = {}
    for name in FIELDS:
        value = draw(st.sampled_from([MISSING, "plausible", "any"]))
        if value == "plausible":
            obj[name] = draw(plausible[name])
        elif value == "any":
            obj[name] = draw(json_values)
    # stdlib json writes what orjson will not (integers beyond 64 bits, say).
    value_bytes = json.dumps(obj).encode()
    customer = obj.get("customer_id")
    key = draw(st.sampled_from([None, b"", b"7", str(customer).encode()]) | st.binary(max_size=8))
    return value_bytes, key


def check(parse: Parser, value: bytes | None, key: bytes | None) -> None:
    """Accepted as a plausible transaction, or rejected with a reason; nothing else."""
    try:
        tx = parse(value, key)
    except InvalidRecord as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip()
        return
    assert type(tx) is Transaction
    assert type(tx.tx_id) is str and 0 < len(tx.tx_id) <= MAX_TX_ID_LENGTH
    assert type(tx.customer_id) is int and 0 < tx.customer_id <= MAX_CUSTOMER_ID
    assert type(tx.amount_cents) is int and 0 < tx.amount_cents <= MAX_AMOUNT_CENTS
    assert tx.currency == CURRENCY
    assert MIN_EVENT_TIME_MS <= tx.event_time_ms < MAX_EVENT_TIME_MS
    assert key == str(tx.customer_id).encode()


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=400)
@given(value=st.none() | st.binary(max_size=200), key=st.none() | st.binary(max_size=20))
def test_arbitrary_bytes_are_accepted_or_rejected_with_a_reason(
        parse: Parser, value: bytes | None, key: bytes | None) -> None:
    check(parse, value, key)


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=1000)
@given(record=hostile_objects())
def test_any_json_value_in_any_field_is_accepted_or_rejected_with_a_reason(
        parse: Parser, record: tuple[bytes, bytes | None]) -> None:
    check(parse, *record)


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=300)
@given(value=json_values)
def test_any_json_document_is_accepted_or_rejected_with_a_reason(parse: Parser,
                                                                  value: Any) -> None:
    check(parse, json.dumps(value).encode(), b"7")


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=400)
@given(data=st.data())
def test_a_valid_record_with_bytes_changed_is_accepted_or_rejected_with_a_reason(
        parse: Parser, data: st.DataObject) -> None:
    valid = bytearray(b'{"tx_id":"a1","customer_id":7,"amount":249.99,"currency":"PLN",'
                      b'"event_time":"2026-03-12T14:23:45Z"}')
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(valid) - 1))
        valid[position] = data.draw(st.integers(0, 255))
    check(parse, bytes(valid), b"7")


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("amount", ["1e308", "1.7976931348623157e308", "1.8e306", "1e400",
                                    "123456789012345678901234567890"])
def test_a_huge_amount_is_over_the_maximum(parse: Parser, amount: str) -> None:
    # 1e308 once raised OverflowError in round(amount * 100) and crash-looped a worker.
    value = (b'{"tx_id":"a","customer_id":2,"amount":' + amount.encode()
             + b',"currency":"PLN","event_time":"2026-12-03T01:00:00Z"}')
    with pytest.raises(InvalidRecord) as info:
        parse(value, b"2")
    assert ("amount over 10000000 PLN" in info.value.reason
            or info.value.reason.startswith("not JSON"))


# -- the decoder: the one place live processing and the report turn records into events --


@dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


def _valid(offset: int, event_ms: int = 1_773_324_225_000) -> Record:
    value = (b'{"tx_id":"t%d","customer_id":7,"amount":1.5,"currency":"PLN","event_time":%d}'
             % (offset, event_ms))
    return Record(offset, b"7", value)


def test_the_decoder_rejects_a_record_that_breaks_the_parser_and_keeps_the_rest() -> None:
    def fragile(value: bytes | None, key: bytes | None) -> Transaction:
        if value == b"boom":
            raise OverflowError("int too large to convert to float")
        return parse_transaction(value, key)

    rejected: list[tuple[int, str]] = []
    decoded = Decoder(None, parse=fragile).decode(
        [_valid(1), Record(2, b"7", b"boom"), _valid(3)], 1_773_324_225_000,
        lambda record, reason: rejected.append((record.offset, reason)))
    assert [(offset, tx is not None) for offset, tx in decoded] == [(1, True), (2, False),
                                                                   (3, True)]
    assert rejected == [(2, "could not be decoded: OverflowError: int too large to convert "
                            "to float")]


def test_an_event_time_too_far_ahead_of_the_wall_clock_is_rejected() -> None:
    wall = 1_773_324_225_000
    rejected: list[tuple[int, str]] = []
    decoded = Decoder(300_000).decode(
        [_valid(1, wall + 300_000), _valid(2, wall + 300_001), _valid(3, 4_102_444_799_000)],
        wall, lambda record, reason: rejected.append((record.offset, reason)))
    assert [(offset, tx is not None) for offset, tx in decoded] == [(1, True), (2, False),
                                                                   (3, False)]
    assert rejected == [
        (2, "event_time 2026-03-12T14:08:45.001Z is 5m1ms ahead of the wall clock "
            "(2026-03-12T14:03:45Z); at most 5m is accepted (TXSTREAM_MAX_EVENT_AHEAD)"),
        (3, "event_time 2099-12-31T23:59:59Z is 26957d9h56m14s ahead of the wall clock "
            "(2026-03-12T14:03:45Z); at most 5m is accepted (TXSTREAM_MAX_EVENT_AHEAD)"),
    ]


def test_without_a_bound_any_accepted_time_passes() -> None:
    decoded = Decoder(None).decode([_valid(1, 4_102_444_799_000)], 0, pytest.fail)
    assert decoded[0][1] is not None
    assert not math.isnan(decoded[0][1].event_time_ms)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(st.one_of(hostile_objects(), st.integers(0, 2**45).map(
           lambda ms: (_valid(0, ms).value, b"7"))), max_size=12),
       bound=st.sampled_from([None, 300_000, 0]))
@example(batch=[(_valid(0, 1_773_324_225_000 + 10**9).value, b"7"), (b"{}", b"7")],
         bound=300_000)  # a valid record too far ahead, then an invalid one
def test_the_compiled_batch_loop_decides_as_the_python_loop(
        batch: list[tuple[bytes, bytes | None]], bound: int | None) -> None:
    """The compiled loop over a batch (common valid records) and the Python decoder (the
    rest) give what the Python loop alone gives: the same transactions, the same rejects
    with the same reasons, in order."""
    records = [Record(offset, key, value) for offset, (value, key) in enumerate(batch)]
    wall = 1_773_324_225_000
    results = []
    for decoder in (Decoder(bound), Decoder(bound, parse=lambda v, k: parse_transaction(v, k))):
        rejected: list[tuple[int, str]] = []
        decoded = decoder.decode(records, wall, lambda record, reason, seen=rejected:
                                 seen.append((record.offset, reason)))
        results.append((decoded, rejected))
    assert results[0] == results[1]
