"""The compiled window-result encoders write exactly what the Python ones write."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import outputs
from tables.outputs import SlidingRun, WindowRun

speedups = pytest.importorskip("app._speedups") if not os.environ.get("CI") else None
if speedups is None:
    from app import _speedups as speedups  # in CI the build must have compiled them

# Amounts beyond the C code's range on purpose: they go through the Python fallback.
AMOUNTS = st.lists(st.one_of(st.integers(min_value=1, max_value=10**9),
                             st.integers(min_value=10**18 - 10, max_value=10**20)),
                   min_size=1, max_size=4)
CUSTOMERS = st.one_of(st.integers(min_value=1, max_value=10**6),
                      st.integers(min_value=10**18 - 2, max_value=2**63 - 1))
#: Times the Python encoders can write (years up to 9999), ends near both limits included.
LAST_MS = 253_402_300_799_999
TIMES = st.one_of(st.integers(min_value=0, max_value=LAST_MS),
                  st.integers(min_value=LAST_MS - 10**9, max_value=LAST_MS))


def _aggregate(amounts: list[int]) -> tuple[int, int, int, int]:
    return len(amounts), sum(amounts), min(amounts), max(amounts)


def test_ci_builds_the_compiled_encoders() -> None:
    assert outputs.COMPILED or not os.environ.get("CI")


@given(st.sampled_from(["tumbling", "hopping"]), TIMES,
       st.integers(min_value=1, max_value=86_400_000),
       st.lists(st.tuples(CUSTOMERS, st.one_of(AMOUNTS, st.just([]))), max_size=6))
def test_fixed_runs(kind: str, start: int, size: int,
                    windows: list[tuple[int, list[int]]]) -> None:
    start = min(start, LAST_MS - size)
    run = WindowRun(kind, start, start + size, [
        (customer, [start, *(_aggregate(amounts) if amounts else (0, 0, 0, 0)), 0], None)
        for customer, amounts in windows])
    texts = (f'{{"result_id":"{kind}:'.encode(),
             f':{start}","kind":"{kind}","customer_id":'.encode(),
             f',"start":"{outputs.format_time(start)}","end":"'
             f'{outputs.format_time(start + size)}","count":'.encode())
    compiled = speedups.fixed_run_records(*texts, start + size, list(run.windows),
                                          lambda item: outputs._one_fixed_record(run, item))
    assert compiled == list(outputs._fixed_records(run))


@given(st.sampled_from([600_000, 60_000, 1_500, 999, 0]),
       st.lists(st.tuples(CUSTOMERS, TIMES, AMOUNTS), max_size=6))
def test_sliding_runs(size: int, rows: list[tuple[int, int, list[int]]]) -> None:
    run = SlidingRun("sliding", size, [(customer, max(end, size), *_aggregate(amounts))
                                       for customer, end, amounts in rows])
    compiled = speedups.sliding_run_records(
        b'{"result_id":"sliding:', b'","kind":"sliding","customer_id":', size,
        list(run.rows), lambda row: outputs._one_sliding_record(run, row))
    assert compiled == list(outputs._sliding_records(run))


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6),
                          st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999),
                          st.integers(min_value=1, max_value=5),
                          st.integers(min_value=1, max_value=10**9)), max_size=6))
def test_window_run_records_use_them_and_agree(
        rows: list[tuple[int, int, int, int]]) -> None:
    runs: list[WindowRun | SlidingRun] = [
        SlidingRun("sliding", 600_000, [(c, end, n, total * n, total, total)
                                        for c, end, n, total in rows]),
        WindowRun("hopping", 1_773_300_000_000, 1_773_300_600_000,
                  [(c, [1_773_300_000_000, n, total * n, total, total, 0], None)
                   for c, _, n, total in rows])]
    python = [*outputs._sliding_records(runs[0]),  # type: ignore[arg-type]
              *outputs._fixed_records(runs[1])]  # type: ignore[arg-type]
    assert (outputs.COMPILED, list(outputs.window_run_records(runs))) == (True, python)
