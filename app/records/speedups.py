"""The optional compiled module (app/records/_speedups.pyx), or None where it was not built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["COMPILED", "Writer", "speedups"]

try:
    from app.records import _speedups as speedups
except ImportError:  # installed without a C compiler: the Python code does everything
    speedups = None  # type: ignore[assignment]

#: Whether the compiled encoders and parser are in use.
COMPILED = speedups is not None

#: Puts records into a compiled record sink (a record batch being built, or a list) from
#: an index on; returns where it stopped because the sink was full, or -1 when all are in
#: (the ``*_into`` functions of the compiled module, bound to their records).
Writer = Callable[[Any, int], int]
