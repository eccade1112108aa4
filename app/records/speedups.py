"""The optional compiled module (app/records/_speedups.pyx), or None where it was not built."""

from __future__ import annotations

__all__ = ["COMPILED", "speedups"]

try:
    from app.records import _speedups as speedups
except ImportError:  # installed without a C compiler: the Python code does everything
    speedups = None  # type: ignore[assignment]

#: Whether the compiled encoders and parser are in use.
COMPILED = speedups is not None
