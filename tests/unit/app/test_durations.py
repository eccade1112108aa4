"""Unit tests for app.durations: parsing and formatting of 500ms / 30s / 5m / 1h."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.durations import DURATION_FORMS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("1h30m", 5_400_000),
        ("1d2h3m4s5ms", 93_784_005),
        ("90s", 90_000),
        ("0s", 0),
        ("0ms", 0),
        ("  5m\n", 300_000),
    ],
)
def test_parse_duration(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"empty duration '' (write {DURATION_FORMS})"),
        ("   ", f"empty duration '   ' (write {DURATION_FORMS})"),
        ("-5s", f"negative duration '-5s' (write {DURATION_FORMS})"),
        ("5", f"not a duration: '5' (write {DURATION_FORMS})"),
        ("5x", f"not a duration: '5x' (write {DURATION_FORMS})"),
        ("ms", f"not a duration: 'ms' (write {DURATION_FORMS})"),
        ("1.5s", f"not a duration: '1.5s' (write {DURATION_FORMS})"),
        ("5 m", f"not a duration: '5 m' (write {DURATION_FORMS})"),
        ("5M", f"not a duration: '5M' (write {DURATION_FORMS})"),
        ("30m1h", f"not a duration: '30m1h' (write {DURATION_FORMS})"),
        ("5m5m", f"not a duration: '5m5m' (write {DURATION_FORMS})"),
        ("1h-30m", f"not a duration: '1h-30m' (write {DURATION_FORMS})"),
    ],
)
def test_parse_duration__invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_duration_forms__names_the_units() -> None:
    assert DURATION_FORMS == "500ms, 30s, 5m, 1h or 1d, or a compound like 1h30m"


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "0s"),
        (500, "500ms"),
        (1_000, "1s"),
        (90_000, "1m30s"),
        (300_000, "5m"),
        (3_600_500, "1h500ms"),
        (86_400_000, "1d"),
        (93_784_005, "1d2h3m4s5ms"),
    ],
)
def test_format_duration(ms: int, expected: str) -> None:
    assert format_duration(ms) == expected


def test_format_duration__negative() -> None:
    with pytest.raises(ValueError) as info:
        format_duration(-1)
    assert str(info.value) == "cannot format a negative duration: -1 ms"


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse__round_trip(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms
