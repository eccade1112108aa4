"""Money on the wire: exact amounts in integer cents (grosze) as decimal text and JSON numbers."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["cents_to_float_exact", "cents_to_json_number", "format_cents"]


def format_cents(cents: int) -> str:
    """Cents as decimal text with two places: 264868 -> ``2648.68``, -5 -> ``-0.05``."""
    whole, part = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}{whole}.{part:02d}"


def cents_to_json_number(cents: int) -> Decimal:
    """Cents as a Decimal with exactly two places (264868 -> Decimal('2648.68'))."""
    return Decimal(cents).scaleb(-2)


def cents_to_float_exact(cents: int) -> float:
    """Cents as the float whose shortest repr is the exact amount (264868 -> 2648.68).

    orjson cannot serialize Decimal, so every JSON output (wire records, window results,
    web views) writes money through this. The value equals ``float(Decimal(cents) / 100)``:
    Python's int/int division is correctly rounded, so it is the float nearest the exact
    decimal, and a decimal of at most 15 significant digits (|cents| < 10**15) is what
    that float's shortest repr prints. Sum in cents; convert only when writing.
    """
    return cents / 100
