"""Aggregate: count, total, min and max of amounts in integer cents, exact."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["Aggregate", "average_cents", "average_in_cents"]

_CENT = Decimal("0.01")


def average_in_cents(total: int, count: int) -> int:
    """Average of ``count`` amounts summing to ``total`` cents, in cents, rounded half-even."""
    if count <= 0:
        message = f"average of an empty aggregate (count={count})"
        raise ValueError(message)
    quotient, remainder = divmod(total, count)
    twice = 2 * remainder
    if twice > count or (twice == count and quotient % 2):
        quotient += 1
    return quotient


def average_cents(total: int, count: int) -> Decimal:
    """Average of ``count`` amounts summing to ``total`` cents, in PLN rounded half-even to 0.01."""
    if count <= 0:
        message = f"average of an empty aggregate (count={count})"
        raise ValueError(message)
    return (Decimal(total) / Decimal(count) / 100).quantize(_CENT, rounding=ROUND_HALF_EVEN)


class Aggregate:
    """Running count/total/min/max over amounts in cents; merge is associative and commutative."""

    __slots__ = ("count", "max", "min", "total")

    def __init__(self, count: int = 0, total: int = 0, min: int = 0, max: int = 0) -> None:
        self.count = count
        self.total = total
        self.min = min
        self.max = max

    def add(self, cents: int) -> None:
        """Add one amount."""
        if self.count == 0:
            self.min = self.max = cents
        elif cents < self.min:
            self.min = cents
        elif cents > self.max:
            self.max = cents
        self.count += 1
        self.total += cents

    def merge(self, other: Aggregate) -> None:
        """Fold another aggregate into this one."""
        if other.count == 0:
            return
        if self.count == 0:
            self.min, self.max = other.min, other.max
        else:
            self.min = min(self.min, other.min)
            self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @property
    def average(self) -> Decimal:
        """Average amount in PLN (two decimals)."""
        return average_cents(self.total, self.count)

    def to_list(self) -> list[int]:
        """Compact form for state records: ``[count, total, min, max]``."""
        return [self.count, self.total, self.min, self.max]

    @classmethod
    def from_list(cls, data: list[int]) -> Aggregate:
        """Inverse of :meth:`to_list`."""
        count, total, lo, hi = data
        return cls(count, total, lo, hi)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregate):
            return NotImplemented
        return self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"Aggregate(count={self.count}, total={self.total}, min={self.min}, max={self.max})"
