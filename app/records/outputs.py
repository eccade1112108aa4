"""Wire format of output records: alerts, window results, sessions, late events, dead letters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import orjson

from tables.aggregate import average_in_cents
from tables.compiled import PackedRows
from tables.outputs import (
    Alert,
    DuplicateConflict,
    LateEvent,
    SessionResult,
    SlidingRun,
    WindowResult,
    WindowRun,
)

from .money import cents_to_float_exact, format_cents
from .speedups import COMPILED, Writer, speedups
from .times import format_time, second_text

__all__ = [
    "COMPILED",
    "alert_records",
    "conflict_reason",
    "dead_letter_headers",
    "encode_alert",
    "encode_late",
    "encode_session",
    "encode_window_result",
    "late_records",
    "money",
    "money_text",
    "session_records",
    "session_writer",
    "window_json",
    "window_result_records",
    "window_run_records",
    "window_run_writers",
]


def money(cents: int) -> float:
    """Cents as a JSON number that prints exactly (``264868`` -> ``2648.68``)."""
    return cents_to_float_exact(cents)


def window_json(start_ms: int, end_ms: int, count: int, total: int, lo: int, hi: int,
                **extra: Any) -> dict[str, Any]:
    """A window as DESIGN.md's JSON object: ISO UTC bounds, exact amounts, derived average."""
    data: dict[str, Any] = {
        "start": format_time(start_ms),
        "end": format_time(end_ms),
        "count": count,
        "total": money(total),
        "min": money(lo) if count else None,
        "max": money(hi) if count else None,
        "average": money(average_in_cents(total, count)) if count else None,
    }
    data.update(extra)
    return data


#: JSON text of the cents part of an amount, as a float's shortest repr prints it:
#: 2648.00 -> "2648.0", 2648.60 -> "2648.6", 2648.68 -> "2648.68".
_FRACTION = tuple(f".{part // 10}" if part % 10 == 0 else f".{part:02d}" for part in range(100))


def money_text(cents: int) -> str:
    """A non-negative amount in cents as the JSON number text :func:`money` encodes to."""
    return f"{cents // 100}{_FRACTION[cents % 100]}"


def _amounts_text(count: int, total: int, low: int, high: int) -> str:
    """``count,"total":..,"min":..,"max":..,"average":..}`` of a window with events."""
    if count == 1:
        # Most windows of a sparse stream hold one event: total, min, max and average
        # are the same amount.
        amount = money_text(total)
        return f'1,"total":{amount},"min":{amount},"max":{amount},"average":{amount}}}'
    return (f'{count},"total":{money_text(total)},"min":{money_text(low)},'
            f'"max":{money_text(high)},"average":{money_text(average_in_cents(total, count))}}}')


# The encoders below write JSON text directly instead of building a dict for orjson: the
# worker encodes about four output records per event, and the dicts were an eighth of its
# CPU. tests/unit/test_outputs.py checks every encoder byte for byte against the dict form.
# Only tx_id comes from outside; it goes through orjson, which escapes it.


def encode_window_result(result: WindowResult) -> bytes:
    """One closed window's final aggregate (deterministic ``result_id``)."""
    return next(window_result_records((result,)))[1]


def window_result_records(results: Iterable[WindowResult]) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, timestamp)`` of each result's record on ``window-results``.

    Results of fixed windows come in runs with the same bounds (every customer's window
    ending at 14:05), so the time texts of the previous result are reused.
    """
    start_ms = end_ms = -1
    start = end = ""
    for result in results:
        if result.start_ms != start_ms:
            start_ms = result.start_ms
            start = format_time(start_ms)
        if result.end_ms != end_ms:
            end_ms = result.end_ms
            end = format_time(end_ms)
        customer = str(result.customer_id)
        kind, count, total = result.kind, result.count, result.total
        if not count:
            value = orjson.dumps({"result_id": result.result_id, "kind": kind,
                                  "customer_id": result.customer_id,
                                  **window_json(start_ms, end_ms, 0, total, 0, 0)})
            yield customer.encode(), value, end_ms
            continue
        # The result_id is WindowResult.result_id, written from the texts at hand (this
        # loop runs per output record); tests/unit/test_outputs.py checks they agree.
        yield customer.encode(), (
            f'{{"result_id":"{kind}:{customer}:{start_ms}","kind":"{kind}",'
            f'"customer_id":{customer},"start":"{start}","end":"{end}","count":'
            f'{_amounts_text(count, total, result.min, result.max)}'
        ).encode(), end_ms


def window_run_records(
        runs: Iterable[WindowRun | SlidingRun]) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, timestamp)`` of each window's record on ``window-results``, run by run.

    A fixed run's windows share kind and bounds, so the text around the customer and the
    amounts is written once per run. With the compiled encoders (:data:`COMPILED`), the
    records come from C (:func:`window_run_writers`); they are the same bytes.
    """
    if speedups is None:
        for run in runs:
            yield from (_sliding_records(run) if isinstance(run, SlidingRun)
                        else _fixed_records(run))
        return
    for writer in window_run_writers(runs):
        records = speedups.RecordList()
        writer(records, 0)
        yield from records.records


def window_run_writers(runs: Iterable[WindowRun | SlidingRun]) -> Iterator[Writer]:
    """For each run, what puts its records into a compiled record sink (a record batch
    being built, or a list): ``writer(sink, first)`` puts them from index ``first`` on and
    returns the index of the first that did not fit, or -1. Only with the compiled module."""
    assert speedups is not None
    for run in runs:
        if isinstance(run, SlidingRun):
            texts = (f'{{"result_id":"{run.kind}:'.encode(),
                     f'","kind":"{run.kind}","customer_id":'.encode(), run.size_ms)
            if type(run.rows) is PackedRows:  # the compiled core's: no object per window
                yield partial(speedups.sliding_packed_into, *texts,
                              memoryview(run.rows),  # type: ignore[arg-type]
                              run.rows, partial(_one_sliding_record, run))
            else:
                yield partial(speedups.sliding_rows_into, *texts, _as_list(run.rows),
                              partial(_one_sliding_record, run))
            continue
        kind, start_ms, end_ms = run.kind, run.start_ms, run.end_ms
        head = f'{{"result_id":"{kind}:'.encode()
        middle = f':{start_ms}","kind":"{kind}","customer_id":'.encode()
        bounds = (f',"start":"{format_time(start_ms)}","end":"{format_time(end_ms)}",'
                  f'"count":').encode()
        fallback = partial(_one_fixed_record, run)
        if type(run.windows) is PackedRows:
            # The compiled core's runs: integers in one buffer, no object per window.
            yield partial(speedups.fixed_packed_into, head, middle, bounds, end_ms,
                          memoryview(run.windows),  # type: ignore[arg-type]
                          run.windows, fallback)
        else:
            yield partial(speedups.records_into, speedups.fixed_run_records(
                head, middle, bounds, end_ms, _as_list(run.windows), fallback))


def _as_list(items: Sequence[Any]) -> list[Any]:
    # The core passes lists; the compiled encoders take nothing else.
    return items if isinstance(items, list) else list(items)


def _one_fixed_record(run: WindowRun, window: tuple[int, Sequence[int], object]) -> tuple[
        bytes, bytes, int]:
    """The Python encoder's record of one window of ``run`` (the compiled one's fallback)."""
    return next(_fixed_records(WindowRun(run.kind, run.start_ms, run.end_ms, [window])))


def _one_sliding_record(run: SlidingRun, row: tuple[int, int, int, int, int, int]) -> tuple[
        bytes, bytes, int]:
    """The Python encoder's record of one row of ``run`` (the compiled one's fallback)."""
    return next(_sliding_records(SlidingRun(run.kind, run.size_ms, [row])))


def _fixed_records(run: WindowRun) -> Iterator[tuple[bytes, bytes, int]]:
    """Records of a run of fixed windows, written in Python."""
    kind, start_ms, end_ms = run.kind, run.start_ms, run.end_ms
    start, end = format_time(start_ms), format_time(end_ms)
    head = f'{{"result_id":"{kind}:'
    middle = f':{start_ms}","kind":"{kind}","customer_id":'
    bounds = f',"start":"{start}","end":"{end}","count":'
    for customer_id, window, _ in run.windows:
        count, total = window[1], window[2]
        customer = str(customer_id)
        if count:
            value = (f'{head}{customer}{middle}{customer}{bounds}'
                     f'{_amounts_text(count, total, window[3], window[4])}')
        else:
            value = orjson.dumps({"result_id": f"{kind}:{customer}:{start_ms}",
                                  "kind": kind, "customer_id": customer_id,
                                  **window_json(start_ms, end_ms, 0, total, 0, 0)}).decode()
        # The result_id is WindowResult.result_id, written from the texts at hand;
        # tests/unit/test_outputs.py checks they agree.
        yield customer.encode(), value.encode(), end_ms


def _sliding_records(run: SlidingRun) -> Iterator[tuple[bytes, bytes, int]]:
    """Records of a sliding run: each window ends at its own millisecond."""
    kind, size = run.kind, run.size_ms
    head = f'{{"result_id":"{kind}:'
    kind_text = f'","kind":"{kind}","customer_id":'
    # With a size of whole seconds, start and end share their milliseconds: two cached
    # second texts and one suffix instead of two format_time calls.
    size_seconds = size // 1000 if size % 1000 == 0 else None
    for customer_id, end_ms, count, total, low, high in run.rows:
        start_ms = end_ms - size
        if size_seconds is None:
            start, end = format_time(start_ms), format_time(end_ms)
        else:
            seconds, millis = divmod(end_ms, 1000)
            suffix = f".{millis:03d}Z" if millis else "Z"
            start = second_text(seconds - size_seconds) + suffix
            end = second_text(seconds) + suffix
        customer = str(customer_id)
        yield customer.encode(), (
            f'{head}{customer}:{start_ms}{kind_text}{customer},"start":"{start}",'
            f'"end":"{end}","count":{_amounts_text(count, total, low, high)}'
        ).encode(), end_ms


def alert_records(alerts: Iterable[Alert]) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, timestamp)`` of each alert's record on ``alerts``."""
    for alert in alerts:
        yield str(alert.customer_id).encode(), encode_alert(alert), alert.event_time_ms


def session_records(sessions: Iterable[SessionResult]) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, timestamp)`` of each closed session's record on ``sessions``."""
    for session in sessions:
        yield str(session.customer_id).encode(), encode_session(session), session.end_ms


def session_writer(sessions: Sequence[SessionResult]) -> Writer:
    """What puts the sessions' records into a compiled record sink (see
    :func:`window_run_writers`); only with the compiled module."""
    assert speedups is not None
    return partial(speedups.session_results_into, _as_list(sessions), _one_session_record)


def _one_session_record(session: SessionResult) -> tuple[bytes, bytes, int]:
    """The Python encoder's record of one session (the compiled one's fallback)."""
    return next(session_records((session,)))


def late_records(late_events: Iterable[LateEvent],
                 partition: int) -> Iterator[tuple[bytes, bytes, int]]:
    """``(key, value, timestamp)`` of each late event's record on ``late-transactions``."""
    for late in late_events:
        yield (str(late.tx.customer_id).encode(), encode_late(late, partition),
               late.tx.event_time_ms)


def encode_alert(alert: Alert) -> bytes:
    """An alert: the customer, the window, its total when it passed the threshold."""
    return (
        f'{{"alert_id":"{alert.alert_id}",'
        f'"customer_id":{alert.customer_id},'
        f'"window_start":"{format_time(alert.window_start_ms)}",'
        f'"window_end":"{format_time(alert.window_end_ms)}",'
        f'"total":{money_text(alert.total)},"count":{alert.count},'
        f'"threshold":{money_text(alert.threshold)},'
        f'"tx_id":{orjson.dumps(alert.tx_id).decode()},'
        f'"event_time":"{format_time(alert.event_time_ms)}"}}'
    ).encode()


def encode_session(session: SessionResult) -> bytes:
    """A closed session: first and last event, count, amounts, duration in seconds."""
    return (
        f'{{"session_id":"{session.session_id}",'
        f'"customer_id":{session.customer_id},'
        f'"start":"{format_time(session.start_ms)}","end":"{format_time(session.end_ms)}",'
        f'"count":{session.count},"total":{money_text(session.total)},'
        f'"min":{money_text(session.min)},"max":{money_text(session.max)},'
        f'"duration":{_seconds_text(session.end_ms - session.start_ms)}}}'
    ).encode()


#: JSON text of the milliseconds part of a duration in seconds, as a float's shortest repr
#: prints it: 1.000 -> "1.0", 1.500 -> "1.5", 1.050 -> "1.05", 1.005 -> "1.005".
_MILLIS = tuple("." + f"{part:03d}".rstrip("0") if part else ".0" for part in range(1000))


def _seconds_text(ms: int) -> str:
    """A non-negative number of milliseconds as the JSON number text of it in seconds."""
    return f"{ms // 1000}{_MILLIS[ms % 1000]}"


def encode_late(late: LateEvent, partition: int) -> bytes:
    """A late event: the transaction, which window kinds had closed, the watermark then."""
    tx = late.tx
    return orjson.dumps({
        "late_id": f"{partition}:{late.offset}",
        "reason": "window closed: " + ", ".join(late.kinds),
        "kinds": list(late.kinds),
        "watermark": format_time(late.watermark_ms),
        "partition": partition,
        "offset": late.offset,
        "tx_id": tx.tx_id,
        "customer_id": tx.customer_id,
        "amount": money(tx.amount_cents),
        "currency": "PLN",
        "event_time": format_time(tx.event_time_ms),
    })


def conflict_reason(conflict: DuplicateConflict) -> str:
    """Why a duplicate with other content is dead-lettered: the earlier offset, and each
    field that differs (earlier value, then this record's).

    ``tx_id 'a7' was already applied at offset 12 with other content (amount 100.00, not
    120.00)``
    """
    tx = conflict.tx
    differences = [
        f"{name} {earlier}, not {here}"
        for name, earlier, here in (
            ("customer_id", str(conflict.earlier_customer_id), str(tx.customer_id)),
            ("amount", format_cents(conflict.earlier_amount_cents),
             format_cents(tx.amount_cents)),
            ("event_time", format_time(conflict.earlier_event_time_ms),
             format_time(tx.event_time_ms)),
        )
        if earlier != here
    ]
    return (f"tx_id {tx.tx_id!r} was already applied at offset {conflict.earlier_offset} "
            f"with other content ({'; '.join(differences)})")


def dead_letter_headers(reason: str, topic: str, partition: int,
                        offset: int) -> list[tuple[str, bytes]]:
    """Headers of a dead letter; its value is the original bytes, untouched."""
    return [
        ("txstream-reason", reason.encode()),
        ("txstream-source", f"{topic}/{partition}/{offset}".encode()),
    ]
