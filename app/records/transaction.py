"""Transaction records: parse and validate raw bytes from `transactions`, encode for the wire."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from app.exceptions import InvalidRecord

from .money import cents_to_float_exact
from .speedups import speedups
from .times import EPOCH, ONE_MS, format_time, iso_to_ms

__all__ = [
    "CURRENCY",
    "MAX_AMOUNT_CENTS",
    "MAX_CUSTOMER_ID",
    "MAX_EVENT_TIME_MS",
    "MAX_TX_ID_LENGTH",
    "MIN_EVENT_TIME_MS",
    "Transaction",
    "encode_transaction",
    "parse_transaction",
    "parse_transaction_python",
    "transaction_key",
]

#: The only currency the store takes; anything else is dead-lettered.
CURRENCY = "PLN"
#: Largest accepted amount: 10,000,000.00 PLN, in cents (grosze).
MAX_AMOUNT_CENTS = 1_000_000_000
#: Customer ids are positive 64-bit integers (what a database key and orjson both hold).
MAX_CUSTOMER_ID = 2**63 - 1
MAX_TX_ID_LENGTH = 128
#: The largest amount as a float, for a check before any float arithmetic.
_MAX_AMOUNT = MAX_AMOUNT_CENTS / 100

#: Event times outside [2000-01-01, 2100-01-01) are "absurd": a broken clock, seconds
#: sent where milliseconds belong, or garbage. They would open windows nobody closes.
MIN_EVENT_TIME_MS = (datetime(2000, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MS
MAX_EVENT_TIME_MS = (datetime(2100, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MS

_FIELDS = ("tx_id", "customer_id", "amount", "currency", "event_time")


@dataclass(slots=True)
class Transaction:
    """One validated purchase; money in integer cents (grosze), times in epoch ms UTC.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which
    was a fifth of the cost of parsing a record. Nothing changes a transaction.
    """

    tx_id: str
    customer_id: int
    amount_cents: int
    currency: str
    event_time_ms: int


def _show(value: Any) -> str:
    """Render a decoded JSON value as JSON for a reason text, cut to stay short."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # pragma: no cover - decoded JSON always re-encodes
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    """Name a decoded JSON value's type the way JSON does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _amount_cents(amount: Any) -> int:
    """Exact cents of a JSON number amount, or InvalidRecord saying what is wrong."""
    kind = type(amount)
    if kind is int:
        cents: int = amount * 100
        if cents <= 0:
            raise InvalidRecord(f"amount must be positive, got {amount}")
    elif kind is float:
        if not math.isfinite(amount):  # orjson refuses these, but not every caller is orjson
            raise InvalidRecord(f"amount must be finite, got {amount!r}")
        if amount <= 0:
            raise InvalidRecord(f"amount must be positive, got {_show(amount)}")
        if amount > _MAX_AMOUNT:
            # Before any arithmetic: amount * 100 of a float near 1.8e308 is infinite, and
            # round() of that raises OverflowError instead of giving a reason.
            raise InvalidRecord(f"amount over 10000000 PLN: {_show(amount)}")
        cents = round(amount * 100)
        if cents / 100 == amount:
            # The float nearest a number of cents: its shortest repr (what was written on
            # the wire) has at most two decimals, and these are its cents.
            if cents > MAX_AMOUNT_CENTS:
                raise InvalidRecord(f"amount over 10000000 PLN: {_show(amount)}")
            return cents
        # repr() is the shortest text that reads back as this float, i.e. the number as
        # it was written on the wire; reading cents off that text is exact. Float
        # arithmetic (amount * 100) would turn 1.005 into 100.49999999999999.
        text = repr(amount)
        whole, _, fraction = text.partition(".")
        if "e" not in text and len(fraction) <= 2:
            # Fast path for plain "249.99"/"5.0": the same digits Decimal(text) would see.
            cents = int(whole) * 100 + int(fraction.ljust(2, "0"))
        else:
            exact = Decimal(text)
            exponent = exact.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -2:
                raise InvalidRecord(f"amount has more than 2 decimal places: {exact}")
            cents = int(exact.scaleb(2))
    else:
        raise InvalidRecord(f"amount must be a JSON number, got {_show(amount)}")
    if cents > MAX_AMOUNT_CENTS:
        raise InvalidRecord(f"amount over 10000000 PLN: {_show(amount)}")
    return cents


def _event_time_ms(event_time: Any) -> int:
    """Epoch ms of an ISO 8601 string or integer epoch ms, range-checked."""
    kind = type(event_time)
    ms: int | None
    if kind is str:
        ms = iso_to_ms(event_time)
        if ms is None:
            raise InvalidRecord(f"event_time is not an ISO 8601 time: {_show(event_time)}")
    elif kind is int:
        ms = event_time
    else:
        shown = _show(event_time)
        msg = f"event_time must be an ISO 8601 string or integer epoch milliseconds, got {shown}"
        raise InvalidRecord(msg)
    if not MIN_EVENT_TIME_MS <= ms < MAX_EVENT_TIME_MS:
        msg = f"absurd event time {_show(event_time)} (must be in 2000-01-01 .. 2100-01-01)"
        raise InvalidRecord(msg)
    return ms


def parse_transaction(value: bytes | None, key: bytes | None) -> Transaction:
    """Parse and validate one ``transactions`` record, or raise :class:`InvalidRecord`.

    Unknown fields are ignored (producers may add some). The key must be the customer id
    as decimal text: it is what routed the record to its partition, and a record on the
    wrong partition would update state another worker owns.

    With the compiled module (app/records/_speedups.pyx), a common valid record is parsed there;
    anything else comes here, and only here are reasons written.
    """
    if _parse_compiled is not None:
        tx: Transaction | None = _parse_compiled(value, key)
        if tx is not None:
            return tx
    return parse_transaction_python(value, key)


def parse_transaction_python(value: bytes | None, key: bytes | None) -> Transaction:
    """:func:`parse_transaction` without the compiled path: the rules themselves."""
    if value is None:
        raise InvalidRecord("not JSON: empty value")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not JSON: {exc.msg}") from None
    if type(obj) is not dict:
        raise InvalidRecord(f"not a JSON object: got {_kind(obj)}")
    try:
        tx_id = obj["tx_id"]
        customer_id = obj["customer_id"]
        amount = obj["amount"]
        currency = obj["currency"]
        event_time = obj["event_time"]
    except KeyError:
        missing = [name for name in _FIELDS if name not in obj]
        label = "field" if len(missing) == 1 else "fields"
        raise InvalidRecord(f"missing {label}: {', '.join(missing)}") from None

    if type(tx_id) is not str:
        raise InvalidRecord(f"tx_id must be a string, got {_show(tx_id)}")
    if not tx_id:
        raise InvalidRecord("tx_id is empty")
    if len(tx_id) > MAX_TX_ID_LENGTH:
        raise InvalidRecord(f"tx_id longer than {MAX_TX_ID_LENGTH} characters")
    # type() rather than isinstance(): JSON true is a bool, and bool is an int subclass.
    if type(customer_id) is not int or not 0 < customer_id <= MAX_CUSTOMER_ID:
        raise InvalidRecord(f"customer_id must be a positive integer, got {_show(customer_id)}")
    amount_cents = _amount_cents(amount)
    if currency != CURRENCY:
        raise InvalidRecord(f"unknown currency {_show(currency)} (only {CURRENCY})")
    event_time_ms = _event_time_ms(event_time)

    expected_key = str(customer_id).encode()
    if key != expected_key:
        if key is None:
            msg = f"key missing (must be the customer_id as text, {customer_id})"
        else:
            shown = key[:40].decode(errors="replace")
            msg = f"key {shown!r} does not match customer_id {customer_id}"
        raise InvalidRecord(msg)
    return Transaction(tx_id, customer_id, amount_cents, CURRENCY, event_time_ms)


if speedups is None:  # not compiled: parse_transaction_python does it all
    _parse_compiled = None
else:
    speedups.configure_parse(orjson.loads, Transaction, CURRENCY, MIN_EVENT_TIME_MS,
                             MAX_EVENT_TIME_MS, MAX_AMOUNT_CENTS, MAX_CUSTOMER_ID,
                             MAX_TX_ID_LENGTH)
    _parse_compiled = speedups.parse


def encode_transaction(tx: Transaction) -> bytes:
    """Wire JSON of ``tx``: amount as an exact JSON number, event_time ISO 8601 UTC."""
    return orjson.dumps(
        {
            "tx_id": tx.tx_id,
            "customer_id": tx.customer_id,
            "amount": cents_to_float_exact(tx.amount_cents),
            "currency": tx.currency,
            "event_time": format_time(tx.event_time_ms),
        }
    )


def transaction_key(tx: Transaction) -> bytes:
    """The record key: the customer id as decimal text (routes a customer to a partition)."""
    return str(tx.customer_id).encode()
