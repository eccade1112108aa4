"""The compiled window-result encoders write exactly what the Python ones write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.exceptions import InvalidRecord
from app.records import outputs, transaction
from app.records.transaction import (
    Transaction,
    encode_transaction,
    parse_transaction,
    parse_transaction_python,
)
from tables.compiled import COMPILED as COMPILED_KINDS
from tables.compiled import CompiledFixedWindowState, CompiledSlidingState, PackedRows
from tables.outputs import Outputs, SessionResult, SlidingRun, WindowRun
from tables.windows import WindowConfig, WindowKind

speedups = pytest.importorskip("app.records._speedups") if not os.environ.get("CI") else None
if speedups is None:
    from app.records import _speedups as speedups

ROOT = Path(__file__).resolve().parents[4]

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
    compiled = speedups.RecordList()
    assert speedups.sliding_rows_into(
        b'{"result_id":"sliding:', b'","kind":"sliding","customer_id":', size,
        list(run.rows), lambda row: outputs._one_sliding_record(run, row), compiled, 0) == -1
    assert compiled.records == list(outputs._sliding_records(run))


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


@given(st.lists(st.tuples(CUSTOMERS, TIMES, st.one_of(st.integers(0, 10**7),
                                                     st.integers(0, 10**19)), AMOUNTS)))
def test_sessions(sessions: list[tuple[int, int, int, list[int]]]) -> None:
    """Durations of every millisecond count, times to year 9999, amounts beyond the C
    code's range (fallback)."""
    results = [SessionResult(customer, start, end, *_aggregate(amounts))
               for customer, start, duration, amounts in sessions
               for end in [min(start + duration, LAST_MS)]]
    sink = speedups.RecordList()
    assert outputs.session_writer(results)(sink, 0) == -1
    assert sink.records == list(outputs.session_records(results))


@pytest.mark.skipif(not COMPILED_KINDS, reason="the compiled window kinds were not built")
@given(st.sampled_from([WindowKind.TUMBLING, WindowKind.HOPPING]),
       st.lists(st.tuples(CUSTOMERS, st.lists(st.one_of(st.integers(1, 10**9),
                                                         st.integers(10**17, 2**61)),
                                               min_size=1, max_size=4)),
                max_size=6, unique_by=lambda window: window[0]))
def test_packed_runs_of_the_compiled_core_agree(kind: WindowKind,
                                                windows: list[tuple[int, list[int]]]) -> None:
    """The compiled core's runs hold their windows packed (``PackedRows``); their records
    are the Python encoder's, amounts beyond the C code's range included (fallback)."""
    state = CompiledFixedWindowState(kind, WindowConfig())
    start = 1_773_300_000_000
    for customer, amounts in windows:
        entry = [start, *_aggregate(amounts), 0]
        state.load(str(customer).encode(), orjson.dumps({"o": 1, "w": [entry]}))
    state.finish_load()
    out = Outputs()
    state._close(start + state.size, out)
    assert [type(run.windows) for run in out.runs] == [PackedRows] * (1 if windows else 0)
    plain = [WindowRun(run.kind, run.start_ms, run.end_ms, list(run.windows))  # type: ignore[union-attr]
             for run in out.runs]
    python = [record for run in plain for record in outputs._fixed_records(run)]
    assert len(python) == len(windows)
    assert list(outputs.window_run_records(out.runs)) == python


# -- parsing ---------------------------------------------------------------------------------

# Naive bounds: hypothesis wants them so (the texts below say Z, UTC).
_DATE_TIMES = st.datetimes(min_value=datetime(1990, 1, 1),  # noqa: DTZ001
                           max_value=datetime(2110, 12, 31))  # noqa: DTZ001


def _iso(moment: datetime, millis: bool) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


_EVENT_TIMES = st.one_of(
    st.builds(_iso, _DATE_TIMES, st.booleans()),
    # Impossible dates and times, in the canonical shape.
    st.builds(lambda y, m, d, h, mi, s: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
              st.integers(1999, 2101), st.integers(0, 13), st.integers(0, 32),
              st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    # One character changed.
    st.builds(lambda text, i, c: text[:i % len(text)] + c + text[i % len(text) + 1:],
              st.builds(_iso, _DATE_TIMES, st.booleans()), st.integers(0, 23),
              st.sampled_from(list("0Z:-.T x+"))),
    st.integers(min_value=-1, max_value=5_000_000_000_000),
    st.floats(), st.none(), st.text(max_size=30))
_AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=10**9).map(lambda cents: cents / 100),
    st.integers(min_value=1, max_value=10**7).map(lambda cents: cents / 1000),
    st.integers(min_value=-3, max_value=2 * 10**7), st.floats(), st.booleans(),
    st.text(max_size=6), st.none())
_FIELDS = {
    "tx_id": st.one_of(st.text(max_size=3), st.text(min_size=120, max_size=140),
                       st.integers(min_value=-(2**63), max_value=2**63 - 1), st.none()),
    "customer_id": st.one_of(st.integers(min_value=-2, max_value=2**64 - 1), st.booleans(),
                             st.floats(), st.text(max_size=4)),
    "amount": _AMOUNTS,
    "currency": st.sampled_from(["PLN", "pln", "EUR", "", 1, None]),
    "event_time": _EVENT_TIMES,
}


@st.composite
def _records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    obj: dict[str, object] = {}
    for name, strategy in _FIELDS.items():
        if draw(st.integers(0, 9)):  # now and then a field is missing
            obj[name] = draw(strategy)
    value = orjson.dumps(obj) if draw(st.integers(0, 19)) else draw(
        st.sampled_from([b"", b"[]", b"{", b"null", b"1"]))
    customer = obj.get("customer_id")
    key = str(customer).encode() if draw(st.integers(0, 9)) else draw(
        st.one_of(st.none(), st.binary(max_size=4)))
    return value, key


def _python(value: bytes | None, key: bytes | None) -> Transaction | None:
    try:
        return parse_transaction_python(value, key)
    except InvalidRecord:
        return None


@pytest.mark.skipif(not COMPILED_KINDS, reason="the compiled window kinds were not built")
@given(st.lists(st.tuples(CUSTOMERS, st.lists(st.one_of(st.integers(1, 10**9),
                                                         st.integers(10**17, 2**61)),
                                               min_size=1, max_size=4)),
                max_size=6, unique_by=lambda events: events[0]))
def test_packed_sliding_runs_of_the_compiled_core_agree(
        events: list[tuple[int, list[int]]]) -> None:
    """The compiled sliding windows' runs are packed too; their records are the Python
    encoder's, amounts beyond the C code's range included (fallback)."""
    state = CompiledSlidingState(WindowConfig())
    start = 1_773_300_000_000
    for customer, amounts in events:
        rows = [[start + 1_000 * k, cents] for k, cents in enumerate(amounts)]
        state.load(str(customer).encode(), orjson.dumps({"o": 1, "f": 0, "e": rows}))
    state.finish_load()
    out = Outputs()
    state._close(start + 3_600_000, out)
    assert [type(run.rows) for run in out.runs] == [PackedRows] * (1 if events else 0)
    plain = [SlidingRun(run.kind, run.size_ms, list(run.rows))  # type: ignore[union-attr]
             for run in out.runs]
    python = [record for run in plain for record in outputs._sliding_records(run)]
    assert len(python) == sum(len(amounts) for _, amounts in events)
    assert list(outputs.window_run_records(out.runs)) == python



@given(_records())
def test_parse_accepts_only_what_python_accepts_with_the_same_result(
        record: tuple[bytes | None, bytes | None]) -> None:
    compiled = speedups.parse(*record)
    assert compiled is None or compiled == _python(*record)


@given(st.integers(min_value=1, max_value=2**63 - 1),
       st.integers(min_value=1, max_value=10**9),
       st.datetimes(min_value=datetime(2000, 1, 1),  # noqa: DTZ001
                    max_value=datetime(2099, 12, 31)),  # noqa: DTZ001
       st.booleans(), st.text(min_size=1, max_size=128))
def test_parse_takes_every_common_valid_record(customer: int, cents: int, moment: datetime,
                                               millis: bool, tx_id: str) -> None:
    value = orjson.dumps({"tx_id": tx_id, "customer_id": customer, "amount": cents / 100,
                          "currency": "PLN", "event_time": _iso(moment, millis)})
    key = str(customer).encode()
    compiled = speedups.parse(value, key)
    assert (compiled, parse_transaction(value, key)) == (_python(value, key),) * 2
    assert compiled is not None


#: Texts of the producers' layout, right and wrong on purpose.
_LAYOUT_AMOUNTS = st.one_of(
    st.sampled_from(["0", "0.0", "0.00", "00.5", "1.", "1.5", "1.05", "1.50", "1.005",
                     "0.01", "10000000", "10000001", "9999999.99", "10000000.0",
                     "10000000.01", "123456789.99", "1e2", "-1", "1.5e1", "01", "1.x"]),
    st.integers(1, 10**8).map(str),
    st.builds(lambda w, f: f"{w}.{f}", st.integers(0, 10**7), st.integers(0, 99)),
    st.builds(lambda w, f: f"{w}.{f:02d}", st.integers(0, 10**7), st.integers(0, 99)))
_LAYOUT_CUSTOMERS = st.one_of(
    st.sampled_from(["0", "01", "7", "999999999999999999", "1000000000000000000",
                     "9223372036854775807", "9223372036854775808", "-3", "3.0"]),
    st.integers(1, 10**12).map(str))
_LAYOUT_TX_IDS = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0,
            max_size=130),
    st.sampled_from(["a", "x" * 128, "x" * 129, "quote\\\"d", "back\\\\slash", "tab\\t",
                     "caf\\u00e9"]))
_LAYOUT_TIMES = st.one_of(
    st.builds(_iso, _DATE_TIMES, st.booleans()),
    st.sampled_from(["2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
                     "1999-12-31T23:59:59.999Z", "2000-01-01T00:00:00Z",
                     "2100-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z",
                     "2026-03-12T14:03:45.12Z", "2026-03-12T14:03:45+00:00",
                     "2026-03-12 14:03:45Z", "2026-03-12T24:00:00Z"]))


@given(_LAYOUT_TX_IDS, _LAYOUT_CUSTOMERS, _LAYOUT_AMOUNTS,
       st.sampled_from(["PLN", "pln", "PLNX", "EUR", ""]), _LAYOUT_TIMES,
       st.sampled_from(["same", "other", "none", "padded"]),
       st.sampled_from(["", " ", "}", ',"extra":1']))
def test_parse_of_the_producers_layout_is_the_python_rules(
        tx_id: str, customer: str, amount: str, currency: str, event_time: str, key_kind: str,
        tail: str) -> None:
    """The records txstream's producers write are read without orjson (``_scan``); each one,
    valid or broken anywhere, gives what the Python rules give, or is left to them."""
    value = (f'{{"tx_id":"{tx_id}","customer_id":{customer},"amount":{amount},'
             f'"currency":"{currency}","event_time":"{event_time}"}}{tail}').encode()
    key = {"same": customer.encode(), "other": b"8", "none": None,
           "padded": b"0" + customer.encode()}[key_kind]
    compiled = speedups.parse(value, key)
    python = _python(value, key)
    assert compiled is None or compiled == python
    if python is not None and key_kind == "same" and not tail and len(customer) <= 18 \
            and "\\" not in tx_id and len(event_time) in (20, 24) \
            and re.fullmatch(r"(0|[1-9][0-9]*)(\.[0-9]{1,2})?", amount):
        assert compiled == python  # the common record is taken, not left to Python


def test_parse_reads_the_producers_layout_without_orjson() -> None:
    """The layout reader is the path taken for a record as the producers write it."""
    value = encode_transaction(Transaction("tx-1", 12345, 12345, "PLN", 1_773_324_225_120))
    limits = (transaction.CURRENCY, transaction.MIN_EVENT_TIME_MS,
              transaction.MAX_EVENT_TIME_MS, transaction.MAX_AMOUNT_CENTS,
              transaction.MAX_CUSTOMER_ID, transaction.MAX_TX_ID_LENGTH)
    try:
        # With a loads that fails, only the layout reader can take the record.
        speedups.configure_parse(_no_loads, Transaction, *limits)
        assert speedups.parse(value, b"12345") == Transaction(
            "tx-1", 12345, 12345, "PLN", 1_773_324_225_120)
        assert speedups.parse(value.replace(b'":', b'": '), b"12345") is None
    finally:
        speedups.configure_parse(orjson.loads, Transaction, *limits)


def _no_loads(value: bytes) -> object:
    raise ValueError("orjson is not to be called")


def test_without_the_compiled_module_the_python_code_gives_the_same_records() -> None:
    # A fresh interpreter in which importing app.records._speedups fails, as after an install
    # without a C compiler.
    script = """
import sys
sys.modules["app.records._speedups"] = None
from app.records import outputs, transaction as records
from tables.outputs import SlidingRun, WindowRun
run = [WindowRun("hopping", 1_773_300_000_000, 1_773_300_600_000,
                 [(7, [1_773_300_000_000, 2, 1999, 999, 1000, 0], None)]),
       SlidingRun("sliding", 600_000, [(7, 1_773_300_600_123, 1, 999, 999, 999)])]
value = b'{"tx_id":"t","customer_id":7,"amount":9.99,"currency":"PLN",' \\
        b'"event_time":"2026-03-12T07:20:13.608Z"}'
print(repr((outputs.COMPILED, list(outputs.window_run_records(run)),
            records.parse_transaction(value, b"7"))))
"""
    python = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    runs: list[WindowRun | SlidingRun] = [
        WindowRun("hopping", 1_773_300_000_000, 1_773_300_600_000,
                  [(7, [1_773_300_000_000, 2, 1999, 999, 1000, 0], None)]),
        SlidingRun("sliding", 600_000, [(7, 1_773_300_600_123, 1, 999, 999, 999)])]
    value = (b'{"tx_id":"t","customer_id":7,"amount":9.99,"currency":"PLN",'
             b'"event_time":"2026-03-12T07:20:13.608Z"}')
    compiled = (outputs.COMPILED, list(outputs.window_run_records(runs)),
                parse_transaction(value, b"7"))
    assert python == repr((False, *compiled[1:]))
