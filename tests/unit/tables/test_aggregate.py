"""Aggregate: exact count/total/min/max in cents, merge, half-even average, record form."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.aggregate import Aggregate, average_cents, average_in_cents


def _of(*amounts: int) -> Aggregate:
    agg = Aggregate()
    for cents in amounts:
        agg.add(cents)
    return agg


def test_add__empty() -> None:
    assert Aggregate().to_list() == [0, 0, 0, 0]


def test_add__one_amount_is_min_and_max() -> None:
    assert _of(24999).to_list() == [1, 24999, 24999, 24999]


def test_add__many() -> None:
    assert _of(25000, 10000, 90000, 10000, 12345).to_list() == [5, 147345, 10000, 90000]


def test_add__descending_then_ascending() -> None:
    assert _of(300, 200, 100, 400, 500).to_list() == [5, 1500, 100, 500]


def test_add__large_totals_stay_exact() -> None:
    # 1000 purchases of 9,999,999.99 PLN: no float anywhere.
    agg = _of(*[999_999_999] * 1000)
    assert agg.to_list() == [1000, 999_999_999_000, 999_999_999, 999_999_999]


def test_merge__both_non_empty() -> None:
    left, right = _of(100, 300), _of(50, 400)
    left.merge(right)
    assert (left.to_list(), right.to_list()) == ([4, 850, 50, 400], [2, 450, 50, 400])


def test_merge__into_empty_copies() -> None:
    agg = Aggregate()
    agg.merge(_of(700, 200))
    assert agg.to_list() == [2, 900, 200, 700]


def test_merge__empty_changes_nothing() -> None:
    agg = _of(700, 200)
    agg.merge(Aggregate())
    assert agg.to_list() == [2, 900, 200, 700]


def test_merge__empty_into_empty() -> None:
    agg = Aggregate()
    agg.merge(Aggregate())
    assert agg.to_list() == [0, 0, 0, 0]


@settings(max_examples=150, deadline=None)
@given(amounts=st.lists(st.integers(1, 10**9), max_size=30), cuts=st.lists(
    st.integers(0, 30), max_size=4))
def test_merge__of_parts_equals_adding_all(amounts: list[int], cuts: list[int]) -> None:
    bounds = sorted({0, len(amounts), *(min(c, len(amounts)) for c in cuts)})
    parts = [_of(*amounts[a:b]) for a, b in itertools.pairwise(bounds)]
    merged = Aggregate()
    for part in reversed(parts):  # order does not matter
        merged.merge(part)
    expected = ([len(amounts), sum(amounts), min(amounts), max(amounts)] if amounts
                else [0, 0, 0, 0])
    assert merged.to_list() == expected == _of(*amounts).to_list()


@pytest.mark.parametrize(("total", "count", "expected"), [
    (100, 1, "1.00"),
    (24999, 1, "249.99"),
    (1350, 4, "3.38"),     # 3.375 -> 3.38 (half to even)
    (1250, 4, "3.12"),     # 3.125 -> 3.12 (half to even)
    (5, 2, "0.02"),        # 0.025 -> 0.02
    (15, 2, "0.08"),       # 0.075 -> 0.08
    (25, 2, "0.12"),       # 0.125 -> 0.12
    (35, 2, "0.18"),       # 0.175 -> 0.18
    (100, 3, "0.33"),      # 0.3333...
    (200, 3, "0.67"),      # 0.6666...
    (1, 3, "0.00"),
    (2, 3, "0.01"),
    (3_017_487, 20, "1508.74"),  # 1508.7435
    (999_999_999_000, 1000, "9999999.99"),
])
def test_average_cents__half_even_to_the_grosz(total: int, count: int, expected: str) -> None:
    value = average_cents(total, count)
    assert (value, str(value), value.as_tuple().exponent) == (Decimal(expected), expected, -2)


@pytest.mark.parametrize("count", [0, -1])
def test_average_cents__empty_is_an_error(count: int) -> None:
    with pytest.raises(ValueError) as info:
        average_cents(0, count)
    assert str(info.value) == f"average of an empty aggregate (count={count})"


def test_average__property() -> None:
    assert [_of(100, 200, 301).average, _of(5, 10).average] == [
        Decimal("2.00"), Decimal("0.08")]  # 2.0033 -> 2.00; 0.075 -> 0.08


def test_average__of_empty_aggregate_raises() -> None:
    with pytest.raises(ValueError, match=r"^average of an empty aggregate \(count=0\)$"):
        _ = Aggregate().average


def test_to_list_from_list__round_trip() -> None:
    agg = _of(700, 200, 450)
    back = Aggregate.from_list(agg.to_list())
    assert (back.to_list(), back == agg, back is agg) == ([3, 1350, 200, 700], True, False)


def test_from_list__keeps_values() -> None:
    agg = Aggregate.from_list([2, 900, 200, 700])
    assert (agg.count, agg.total, agg.min, agg.max) == (2, 900, 200, 700)


def test_from_list__wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError):
        Aggregate.from_list([1, 2, 3])


def test_eq_and_repr() -> None:
    assert (_of(1, 2) == _of(2, 1), _of(1, 2) == _of(1, 3), _of(1) == [1, 1, 1, 1],
            repr(_of(5, 7))) == (True, False, False,
                                 "Aggregate(count=2, total=12, min=5, max=7)")


@pytest.mark.parametrize("total", [*range(-3, 40), 10**15 + 7])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 8])
def test_integer_average_equals_decimal_half_even(total: int, count: int) -> None:
    assert Decimal(average_in_cents(total, count)) / 100 == average_cents(total, count)
