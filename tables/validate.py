"""Shape checks of state records read back from a table: cheap, so loading stays fast."""

from __future__ import annotations

from typing import Any

__all__ = ["CorruptRecord", "require", "require_int", "require_int_rows"]


class CorruptRecord(ValueError):
    """A state record that txstream did not write, or that was damaged: it is skipped."""


def require(condition: bool, what: str) -> None:
    """Raise :class:`CorruptRecord` saying ``what`` is wrong unless ``condition`` holds."""
    if not condition:
        raise CorruptRecord(what)


def require_int(value: Any, what: str) -> int:
    """``value`` if it is an integer (JSON true/false are not), else CorruptRecord."""
    require(type(value) is int, f"{what} is not an integer")
    return int(value)


def require_int_rows(rows: Any, width: int, what: str) -> list[list[int]]:
    """``rows`` if it is a list of lists of ``width`` integers each, else CorruptRecord.

    Checked in C rather than per value: every row's length, and the type of the sum of
    all values, which is an int only if every value is one (a float makes it a float;
    a string, a null or a nested list makes ``sum`` raise).
    """
    require(type(rows) is list, f"{what} is not a list")
    if rows:
        try:
            lengths = set(map(len, rows))
            total = sum(map(sum, rows))
        except TypeError:
            raise CorruptRecord(f"{what} holds something other than lists of integers") from None
        require(lengths == {width} and type(total) is int,
                f"{what} is not a list of {width}-integer lists")
    return rows  # type: ignore[no-any-return]
