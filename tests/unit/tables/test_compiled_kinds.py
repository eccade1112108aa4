"""The compiled window kinds give what the Python ones give: outputs, records, views."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tables import compiled as compiled_module
from tables.compiled import (
    COMPILED,
    CompiledFixedWindowState,
    CompiledSessionState,
    CompiledSlidingState,
    fixed_window_state,
    session_state,
    sliding_state,
)
from tables.fixed import CLOSED, FixedWindowState
from tables.kindstate import META_KEY, KindState
from tables.outputs import Outputs
from tables.partition import PartitionState
from tables.sessions import SessionState
from tables.sliding import SlidingState
from tables.validate import CorruptRecord
from tables.windows import WindowConfig, WindowKind
from tests.unit.tables.core_helpers import CONFIG, MIN, SEC, Tx, at

# CI builds the extensions: there, a missing one fails these tests instead of skipping them.
pytestmark = pytest.mark.skipif(
    not COMPILED and not os.environ.get("CI"),
    reason="the compiled kinds were not built (no C++ compiler at install)")
ROOT = Path(__file__).resolve().parents[3]

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
START = at("14:00")
#: Retention short enough that windows expire within an example.
SHORT = WindowConfig(**{**{f: getattr(CONFIG, f) for f in CONFIG.__dataclass_fields__},
                        "retention_ms": 4 * MIN})

#: Event times: anywhere in 90 minutes, and on and next to window bounds.
_TIMES = st.one_of(
    st.integers(0, 90 * 60).map(lambda k: START + SEC * k),
    st.integers(0, 18).map(lambda k: START + 5 * MIN * k),
    st.integers(0, 18).map(lambda k: START + 5 * MIN * k - 1),
    st.integers(0, 45).map(lambda k: START + 2 * MIN * k + 1),
    # Events that take the watermark (5 s behind) exactly to a bound.
    st.integers(0, 45).map(lambda k: START + 2 * MIN * k + 5 * SEC),
)
#: Amounts: any, and ones that reach the alert threshold (5000.00 PLN) exactly.
_CENTS = st.one_of(st.integers(1, 400_000), st.sampled_from([100_000, 250_000, 500_000]))
#: One source record: an invalid one (None) or (customer, time, cents).
_RECORD = st.one_of(st.none(), st.tuples(st.integers(1, 4), _TIMES, _CENTS))


@st.composite
def _stream(draw: st.DrawFn, min_size: int = 0) -> list[Any]:
    """Records at random times, or a stream that moves forward on a 5-second grid (the
    allowed lateness) give or take a millisecond: events then land exactly on and next to
    the watermark, on each other's times and a little behind, as in a real stream."""
    if draw(st.booleans()):
        return draw(st.lists(_RECORD, min_size=min_size, max_size=60))
    steps = draw(st.lists(st.tuples(st.integers(1, 2), st.integers(-4, 12),
                                    st.sampled_from([0, 0, 0, 1, -1]), _CENTS, st.booleans()),
                          min_size=min_size, max_size=60))
    rows: list[Any] = []
    now = START
    for customer, step, jitter, cents, valid in steps:
        now += 5 * SEC * step
        rows.append((customer, now + jitter, cents) if valid or step % 3 else None)
    return rows


def _pairs(config: WindowConfig) -> list[tuple[Any, Any]]:
    """Each kind as (Python state, compiled state), both empty."""
    return [(FixedWindowState(WindowKind.TUMBLING, config),
             CompiledFixedWindowState(WindowKind.TUMBLING, config)),
            (FixedWindowState(WindowKind.HOPPING, config),
             CompiledFixedWindowState(WindowKind.HOPPING, config)),
            (SlidingState(config), CompiledSlidingState(config)),
            (SessionState(config), CompiledSessionState(config))]


def _batches(rows: list[Any], cuts: list[int]) -> list[list[tuple[int, Tx | None]]]:
    """Offset-numbered records cut into batches at ``cuts``."""
    records = [(offset, None if row is None else Tx(f"tx-{offset}", row[0], row[2], row[1]))
               for offset, row in enumerate(rows)]
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    return [records[a:b] for a, b in itertools.pairwise(bounds)]


def _record(value: bytes) -> Any:
    """A state record with its windows in start order (the Python class writes them in the
    order they were created, the compiled one by start: the same windows)."""
    data = orjson.loads(value)
    if "w" in data:
        data["w"] = sorted(data["w"])
    return data


def _windows(state: Any, customer: int) -> list[Any]:
    if isinstance(state, SessionState):
        return [(s.start, s.last, s.to_list(), s.closed) for s in state.sessions_of(customer)]
    return [(s, e, w.to_list(), getattr(w, "closed", None), getattr(w, "alerted", None))
            for s, e, w in state.windows_of(customer)]


def _view(state: Any) -> dict[str, Any]:
    """Everything a user or a restart can see of a state."""
    return {
        "windows": {c: _windows(state, c) for c in range(1, 5)},
        "watermark": state.watermark.to_list(),
        "offset": state.offset,
        "late": state.late,
    }


def _step(state: KindState[Any], batch: list[tuple[int, Tx | None]],
          wall: int | None, view: bool = True) -> tuple[Any, ...]:
    out = Outputs()
    marks = {offset: 0 for offset, _ in batch[::3]}
    late = state.apply_batch(batch, out, marks)
    state.advance(wall, out)
    dumped = [(key, _record(value)) for key, value in state.dump_dirty()]
    return (late, marks, out.alerts, out.window_results(), out.sessions,
            sorted(dumped, key=repr), _view(state) if view else None)


@SETTINGS
@given(rows=_stream(), cuts=st.lists(st.integers(0, 60), max_size=5),
       idle=st.lists(st.booleans(), max_size=6), short=st.booleans())
def test_compiled_equals_python(rows: list[Any], cuts: list[int], idle: list[bool],
                                short: bool) -> None:
    for python, compiled in _pairs(SHORT if short else CONFIG):
        for i, batch in enumerate(_batches(rows, cuts)):
            # Sometimes the wall clock runs far ahead: idle partitions close windows.
            wall = 10**13 + i * 10 * MIN if i < len(idle) and idle[i] else None
            if wall is not None:
                python.mark_input(10**13)
                compiled.mark_input(10**13)
            assert _step(compiled, batch, wall) == _step(python, batch, wall)


@SETTINGS
@given(rows=_stream(min_size=1),
       cuts=st.lists(st.integers(0, 60), min_size=1, max_size=4), data=st.data())
def test_compiled_resumes_from_records_as_python_does(rows: list[Any], cuts: list[int],
                                                      data: st.DataObject) -> None:
    """Records one class wrote load into either, and both go on alike."""
    batches = _batches(rows, cuts)
    flushed = data.draw(st.integers(0, len(batches)), label="batches before the restart")
    for writer, _ in _pairs(CONFIG):
        records: dict[bytes, bytes] = {}
        for batch in batches[:flushed]:
            _step(writer, batch, None)
            writer.dirty.update(writer.customers)
            writer._meta_dirty = True
            records.update(writer.dump_dirty())
        python, compiled = next((p, c) for p, c in _pairs(CONFIG) if type(p) is type(writer)
                                and p.kind == writer.kind)
        for state in (python, compiled):
            for key, value in records.items():
                state.load(key, value)
            state.finish_load()
        assert _view(compiled) == _view(python)
        for batch in batches[flushed:]:
            assert _step(compiled, batch, None) == _step(python, batch, None)


@pytest.mark.parametrize("batch_size", [1, 7, 100])
@pytest.mark.parametrize("short", [False, True])
def test_compiled_equals_python_on_a_dense_stream(batch_size: int, short: bool) -> None:
    """Customers every 5 s for 75 minutes, on the second and a millisecond after it, one
    pausing for exactly a session gap, a few late: the watermark lands on and next to every
    window end, session end and retention horizon, and events are exactly a window's
    length or a session gap apart."""
    rows: list[Any] = []
    for k in range(900):
        now = START + 5 * SEC * k
        if k % 300 < 120 or k % 300 == 299:  # 10 minutes on, then 15 minutes (the gap) off
            rows.append((1, now, 1_000 + k))
        rows.append((2, now + 1, 90_000 + k))
        rows.append((3, now, 5_000 + k))
        if k % 37 == 0:
            rows.append((2, now - 15 * SEC, 7))  # late for some kinds
        if k % 41 == 0:
            rows.append((4, now + 1 - 5 * SEC - 15 * MIN, 9))  # its span ends at the watermark
    records = [(offset, Tx(f"tx-{offset}", row[0], row[2], row[1]))
               for offset, row in enumerate(rows)]
    for python, compiled in _pairs(SHORT if short else CONFIG):
        for n, first in enumerate(range(0, len(records), batch_size)):
            batch = records[first:first + batch_size]
            view = n % 16 == 0  # the views of every state are slow to compare
            assert _step(compiled, batch, None, view) == _step(python, batch, None, view)


def test_a_record_of_the_older_layout_loads_the_same() -> None:
    """Before "c", a record flagged each closed window with CLOSED."""
    old = orjson.dumps({"o": 7, "w": [[at("14:00"), 2, 700, 200, 500, CLOSED],
                                      [at("14:05"), 1, 300, 300, 300, 0]]})
    meta = orjson.dumps({"o": 7, "wm": [at("14:05") + 1, at("14:05") - 4 * SEC], "late": 0,
                         "c": {}})
    views = []
    for state in (FixedWindowState(WindowKind.TUMBLING, CONFIG),
                  CompiledFixedWindowState(WindowKind.TUMBLING, CONFIG)):
        state.load(b"1", old)
        state.load(META_KEY, meta)
        state.finish_load()
        views.append(_view(state))
        assert [w.closed for _, _, w in state.windows_of(1)] == [True, False]
    assert views[0] == views[1]


_fixedcore, _eventcore = compiled_module._fixedcore, compiled_module._eventcore
_INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1),
                   st.sampled_from([0, -1, 9, 10, -10, 2**63 - 1, -(2**63)]))


def _orjson_records(state: KindState[Any]) -> dict[bytes, bytes]:
    """The customer records as the Python code writes them: orjson over ``_dump``."""
    return {str(customer).encode(): orjson.dumps(state._dump(state.customers[customer]))
            for customer in state.dirty}


@SETTINGS
@given(customer=st.integers(0, 2**63 - 1), offset=_INT64, closed=_INT64, watermark=_INT64,
       entries=st.lists(st.tuples(*[_INT64] * 7), max_size=5))
def test_compiled_records_are_the_bytes_orjson_writes(
        customer: int, offset: int, closed: int, watermark: int,
        entries: list[tuple[int, ...]]) -> None:
    """The state records written in C, for any 64-bit values (signs, both extremes)."""
    windows = _fixedcore.WindowList(offset, closed)
    windows.set_entries(list({entry[0]: list(entry[:6]) for entry in entries}.values()))
    events = _eventcore.EventList(offset, closed)
    events.set_events(sorted([e[0], e[1]] for e in entries))
    sessions = _eventcore.SessionList(offset)
    sessions.set_sessions(sorted(list(e) for e in entries))
    states: list[tuple[KindState[Any], Any]] = [
        (CompiledFixedWindowState(WindowKind.HOPPING, CONFIG), windows),
        (CompiledSlidingState(CONFIG), events),
        (CompiledSessionState(CONFIG), sessions)]
    for state, customer_state in states:
        state.customers[customer] = customer_state
        state.watermark.value = watermark
        state.dirty.add(customer)
        expected = _orjson_records(state)
        assert dict(state._customer_records()) == expected
        assert len(expected) == 1


def test_compiled_records_are_the_bytes_orjson_writes_on_a_stream() -> None:
    """After every batch of a stream with late events, closes and expiry."""
    rows = [(customer, START + 37 * SEC * k + customer, 1_000 * k + customer)
            for k in range(400) for customer in (1, 2, 3) if (k * customer) % 7]
    rows += [(2, START + 5 * MIN, 55)] * 3  # late by then
    for _, compiled in _pairs(SHORT):
        for batch in _batches(rows, [50, 120, 300, 700, 900]):
            compiled.apply_batch(batch, Outputs())
            compiled.advance(None, Outputs())
            expected = _orjson_records(compiled)
            assert expected
            assert dict(compiled.dump_dirty()[:-1]) == expected


@pytest.mark.parametrize(("kind", "record"), [
    ("tumbling", {"o": 2**63, "w": []}),
    ("tumbling", {"o": 1, "w": [[at("14:00"), 1, 2**63, 1, 1, 0]]}),
    ("tumbling", {"o": 1, "w": [[at("14:00"), 1, 1, 1, 1, 0]], "c": 2**64 - 1}),
    ("sliding", {"o": 2**63, "f": 0, "e": []}),
    ("sliding", {"o": 1, "f": 2**63, "e": []}),
    ("sliding", {"o": 1, "f": 0, "e": [[at("14:00"), 2**64 - 1]]}),
    ("session", {"o": 2**63, "s": []}),
    ("session", {"o": 1, "s": [[at("14:00"), at("14:00"), 1, 2**64 - 1, 1, 1, 0]]}),
])
def test_a_record_beyond_64_bits_is_corrupt_not_a_crash(kind: str,
                                                        record: dict[str, Any]) -> None:
    state: KindState[Any] = {
        "sliding": CompiledSlidingState, "session": CompiledSessionState,
    }.get(kind, lambda config: CompiledFixedWindowState(WindowKind.TUMBLING, config))(CONFIG)
    with pytest.raises(CorruptRecord, match="out of range"):
        state.load(b"1", orjson.dumps(record))
    assert state.customers == {}


def test_the_pipeline_uses_the_compiled_windows() -> None:
    state = PartitionState(0, CONFIG)
    assert type(state.tumbling) is CompiledFixedWindowState
    assert type(state.hopping) is CompiledFixedWindowState
    assert type(state.sliding) is CompiledSlidingState
    assert type(state.sessions) is CompiledSessionState
    assert type(session_state(CONFIG)) is CompiledSessionState
    assert type(fixed_window_state(WindowKind.HOPPING, CONFIG)) is CompiledFixedWindowState
    assert type(sliding_state(CONFIG)) is CompiledSlidingState


def _few_events() -> tuple[Any, ...]:
    """A few events through a whole partition: its kinds' class names, results, sessions."""
    state = PartitionState(0, CONFIG)
    out = state.apply([(0, Tx("a", 1, 700, at("14:01"))), (1, Tx("b", 2, 300, at("14:03"))),
                       (2, Tx("a", 1, 700, at("14:01"))),  # a duplicate: skipped
                       (3, Tx("c", 1, 250, at("14:20")))])
    return (sorted({type(table).__name__ for table in state.tables.values()}),
            [(r.kind, r.customer_id, r.start_ms, r.count, r.total) for r in out.window_results()],
            [(r.customer_id, r.start_ms, r.end_ms, r.total) for r in out.sessions])


def test_without_the_extensions_the_python_kinds_do_the_work() -> None:
    # A fresh interpreter in which importing the compiled kinds fails, as after an install
    # without a C++ compiler: the same pipeline, the Python classes, the same results.
    script = """
import sys
sys.modules["tables._fixedcore"] = sys.modules["tables._eventcore"] = None
sys.modules["tables._dedupecore"] = None
from tables.compiled import COMPILED
from tests.unit.tables.test_compiled_kinds import _few_events
print(repr((COMPILED, *_few_events())))
"""
    python = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    names, results, sessions = _few_events()
    assert names == ["CompiledFixedWindowState", "CompiledSessionState", "CompiledSlidingState",
                     "CompiledTxIdState"]
    assert len(results) == 14 and len(sessions) == 2  # 1 + 1 tumbling, 5 + 5 hopping, 1 + 1 sliding
    assert python == repr((False, ["FixedWindowState", "SessionState", "SlidingState",
                                   "TxIdState"],
                           results, sessions))
