"""Garbage-collector settings for a process that holds millions of long-lived state objects."""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

#: Allocations between young-generation collections (CPython's default is 700).
GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect rarely and never re-scan what exists now; call once, after start-up.

    The windowing state is millions of small objects that live for minutes and form no
    reference cycles (reference counting frees them). With CPython's defaults the cyclic
    collector traverses them again and again as they age and as the state grows: measured
    with ``python -m bench.core``, that was a third of the worker's CPU. Cycles (asyncio
    futures, exceptions) are still collected, only less often; ``gc.freeze`` moves the
    modules and objects built at start-up out of every future collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 1000)
