"""The batch report, the live-table check and their command-line parsing, without a broker."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest

from app.commands.progress import ProgressLine, render_progress
from app.commands.replay import DEFAULT_OUTPUTS, parse_outputs, parse_version
from app.commands.report import ReportOptions, parse_report_options
from app.commands.usage import UsageError
from app.kafka.changelog import ChangelogPartition, load_kind
from app.kappa.report import (
    NEVER_LATE_MS,
    ReportRow,
    WindowDifference,
    WindowReport,
    compare_windows,
    decode_records,
    format_differences,
    format_rows,
    report_config,
)
from app.records.times import parse_time
from app.records.transaction import Transaction
from app.settings import Settings
from app.topics import TopicNames
from tables.aggregate import Aggregate
from tables.fixed import TOTAL, FixedWindowState
from tables.kindstate import META_KEY
from tables.partition import PartitionState
from tables.windows import WindowConfig, WindowKind

HOUR = 3_600_000
LIVE = WindowConfig(tumbling_ms=5 * 60_000, allowed_lateness_ms=5_000, retention_ms=24 * HOUR)
HOURLY = report_config(LIVE, HOUR, include_late=False)


def t(clock: str) -> int:
    """Epoch ms of ``HH:MM:SS[.fff]`` on 2026-03-12 UTC."""
    return parse_time(f"2026-03-12T{clock}Z")


def tx(customer: int, amount: str, clock: str) -> Transaction:
    whole, _, cents = amount.partition(".")
    return Transaction(f"{customer}-{clock}", customer, int(whole) * 100 + int(cents or 0),
                       "PLN", t(clock))


# (partition, offset, transaction or None for an invalid record), in offset order per
# partition. Customers 1 and 3 live in partition 0, customer 2 in partition 1.
INPUT: list[tuple[int, int, Transaction | None]] = [
    (0, 0, tx(1, "100.10", "09:00:00")),
    (1, 0, tx(2, "2500.00", "09:10:00")),
    (0, 1, tx(1, "4900.00", "09:30:00")),
    (0, 2, None),
    (1, 1, tx(2, "2500.00", "10:20:00")),   # partition 1's watermark: 10:19:55
    (0, 3, tx(3, "19.99", "09:59:59.999")),
    (1, 2, None),
    (1, 3, tx(2, "1.01", "09:59:59")),      # late: the 09:00 window closed at 10:00
    (0, 4, tx(1, "250.00", "10:00:00")),    # boundary: the 10:00 window
    (0, 5, tx(3, "0.01", "11:15:00")),      # partition 0's watermark: 11:14:55
    (0, 6, tx(1, "50.00", "10:59:00")),     # late: the 10:00 window closed at 11:00
    (0, 7, tx(3, "5.00", "11:14:56")),      # within the lateness
]


def run(config: WindowConfig = HOURLY, *, customer: int | None = None,
        batch: int = 100) -> WindowReport:
    """Feed INPUT partition by partition in batches of ``batch`` records."""
    report = WindowReport(config, customer=customer)
    pending: dict[int, list[tuple[int, Transaction | None]]] = {}
    for partition, offset, record in INPUT:
        pending.setdefault(partition, []).append((offset, record))
        if len(pending[partition]) >= batch:
            report.apply(partition, pending.pop(partition))
    for partition, records in pending.items():
        report.apply(partition, records)
    return report


def row(start: str, end: str, count: int, total: int) -> ReportRow:
    return ReportRow(t(start), t(end), count, total)


EXPECTED = [
    row("09:00:00", "10:00:00", 4, 752009),    # 100.10 + 4900.00 + 19.99 + 2500.00
    row("10:00:00", "11:00:00", 2, 275000),    # 250.00 + 2500.00
    row("11:00:00", "12:00:00", 2, 501),       # 0.01 + 5.00
]


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_rows_of_a_fixed_input_are_exact_and_drop_late_events(batch: int) -> None:
    report = run(batch=batch)
    assert report.rows() == EXPECTED
    assert [r.average for r in report.rows()] == [
        Decimal("1880.02"), Decimal("1375.00"), Decimal("2.50")]  # 2.505 -> half-even
    assert (report.events, report.invalid, report.late) == (10, 2, 2)


def test_repeated_purchases_are_skipped_as_live_processing_skips_them() -> None:
    # Every valid record of INPUT sent again right after its original (an outbox relayed
    # twice), and one with another amount (dead-lettered live, skipped here).
    report = WindowReport(HOURLY)
    for partition in (0, 1):
        records: list[tuple[int, Transaction | None]] = []
        for _, _, record in (r for r in INPUT if r[0] == partition):
            records.append((len(records), record))
            if record is not None:
                records.append((len(records), record))
        last = [r for _, r in records if r is not None][-1]
        records.append((len(records), Transaction(last.tx_id, last.customer_id,
                                                  last.amount_cents + 1, "PLN",
                                                  last.event_time_ms)))
        report.apply(partition, records)
    assert (report.rows(), report.events, report.duplicates, report.invalid,
            report.conflicts, report.late) == (EXPECTED, 10, 10, 4, 2, 2)


def test_include_late_counts_every_valid_transaction() -> None:
    report = run(report_config(LIVE, HOUR, include_late=True))
    assert report.rows() == [
        row("09:00:00", "10:00:00", 5, 752110),
        row("10:00:00", "11:00:00", 3, 280000),
        row("11:00:00", "12:00:00", 2, 501),
    ]
    assert (report.events, report.invalid, report.late) == (10, 2, 0)


def test_report_config_keeps_live_lateness_unless_late_events_are_included() -> None:
    assert (HOURLY.tumbling_ms, HOURLY.allowed_lateness_ms, HOURLY.retention_ms) == (
        HOUR, 5_000, 0)
    assert report_config(LIVE, HOUR, include_late=True).allowed_lateness_ms == NEVER_LATE_MS


def test_customer_filter_keeps_only_that_customers_windows() -> None:
    assert run(customer=1).rows() == [
        row("09:00:00", "10:00:00", 2, 500010),
        row("10:00:00", "11:00:00", 1, 25000),
    ]
    assert run(customer=2).rows() == [
        row("09:00:00", "10:00:00", 1, 250000),
        row("10:00:00", "11:00:00", 1, 250000),
    ]
    assert run(customer=99).rows() == []


def test_from_and_to_filter_window_starts_half_open() -> None:
    report = run()
    assert report.rows(start_from=t("10:00:00")) == EXPECTED[1:]
    assert report.rows(start_to=t("10:00:00")) == EXPECTED[:1]
    assert report.rows(start_from=t("09:30:00"), start_to=t("11:00:00")) == EXPECTED[1:2]
    assert report.rows(start_from=t("12:00:00")) == []


def test_the_report_of_the_live_window_equals_the_live_tables() -> None:
    # The same records through a live-configured PartitionState: summing its tumbling
    # windows over customers gives the report's rows for the live window size.
    live = {p: PartitionState(p, LIVE, ("tumbling",)) for p in (0, 1)}
    for partition, offset, record in INPUT:
        live[partition].apply([(offset, record)])
    sums: dict[int, list[int]] = {}
    for state in live.values():
        for customer_id in state.tumbling.customers:
            for start, _, w in state.tumbling.windows_of(customer_id):
                entry = sums.setdefault(start, [0, 0])
                entry[0] += w.count
                entry[1] += w.total
    expected = [ReportRow(start, start + LIVE.tumbling_ms, count, total)
                for start, (count, total) in sorted(sums.items())]
    assert run(report_config(LIVE, LIVE.tumbling_ms, include_late=False)).rows() == expected


@dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


def test_decode_records_marks_invalid_ones_as_none() -> None:
    good = b'{"tx_id":"a","customer_id":7,"amount":12.5,"currency":"PLN",' \
           b'"event_time":"2026-03-12T09:00:00Z"}'
    decoded = decode_records([Record(4, b"7", good), Record(5, None, b"nope"),
                              Record(6, b"8", good)])  # key does not match the body
    assert decoded == [(4, Transaction("a", 7, 1250, "PLN", t("09:00:00"))), (5, None),
                       (6, None)]


# -- formats ----------------------------------------------------------------------------


def test_table_format_is_exact() -> None:
    assert format_rows(EXPECTED, "table") == (
        "start                 end                   count     total  average\n"
        "2026-03-12T09:00:00Z  2026-03-12T10:00:00Z      4   7520.09  1880.02\n"
        "2026-03-12T10:00:00Z  2026-03-12T11:00:00Z      2   2750.00  1375.00\n"
        "2026-03-12T11:00:00Z  2026-03-12T12:00:00Z      2      5.01     2.50\n"
        "all                                             8  10275.10  1284.39\n"
    )


def test_table_format_of_nothing_says_so() -> None:
    assert format_rows([], "table") == (
        "start  end  count  total  average\n"
        "all             0   0.00        -\n"
    )


def test_json_format_is_exact() -> None:
    text = format_rows(EXPECTED, "json")
    assert text == (
        '[{"start":"2026-03-12T09:00:00Z","end":"2026-03-12T10:00:00Z","count":4,'
        '"total":7520.09,"average":1880.02},'
        '{"start":"2026-03-12T10:00:00Z","end":"2026-03-12T11:00:00Z","count":2,'
        '"total":2750.0,"average":1375.0},'
        '{"start":"2026-03-12T11:00:00Z","end":"2026-03-12T12:00:00Z","count":2,'
        '"total":5.01,"average":2.5}]\n'
    )
    assert [Decimal(str(r["total"])) for r in orjson.loads(text)] == [
        Decimal("7520.09"), Decimal("2750"), Decimal("5.01")]
    assert format_rows([], "json") == "[]\n"


def test_csv_format_is_exact() -> None:
    assert format_rows(EXPECTED, "csv") == (
        "start,end,count,total,average\n"
        "2026-03-12T09:00:00Z,2026-03-12T10:00:00Z,4,7520.09,1880.02\n"
        "2026-03-12T10:00:00Z,2026-03-12T11:00:00Z,2,2750.00,1375.00\n"
        "2026-03-12T11:00:00Z,2026-03-12T12:00:00Z,2,5.01,2.50\n"
    )


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        format_rows(EXPECTED, "xml")


# -- the check ---------------------------------------------------------------------------


def recomputed(records: Iterable[tuple[int, Transaction | None]],
               config: WindowConfig = LIVE) -> PartitionState:
    state = PartitionState(0, config, ("tumbling",))
    state.apply(records)
    return state


def as_live(state: PartitionState, config: WindowConfig = LIVE,
            extra: Iterable[tuple[bytes, bytes]] = ()) -> FixedWindowState:
    """What the check reads back from a changelog holding ``state``'s flushes."""
    part = ChangelogPartition(0)
    for key, value in [*state.tumbling.dump_dirty(), *extra]:
        part.add(key, value)
    live = FixedWindowState(WindowKind.TUMBLING, config)
    load_kind(live, part)
    return live


PARTITION_0 = [(offset, record) for p, offset, record in INPUT if p == 0]


def test_check_finds_nothing_when_the_live_table_is_the_recomputation() -> None:
    live = as_live(recomputed(PARTITION_0))
    differences, compared = compare_windows(live, recomputed(PARTITION_0).tumbling)
    assert differences == []
    assert compared == 6  # 5-minute windows of customers 1 and 3, three each


def test_check_reports_each_wrong_missing_or_extra_window() -> None:
    # The live table's records with customer 1's and customer 3's changed.
    records = dict(recomputed(PARTITION_0).tumbling.dump_dirty())
    first, third = orjson.loads(records[b"1"]), orjson.loads(records[b"3"])
    windows = {entry[0]: entry for entry in first["w"]}
    windows[t("09:00:00")][TOTAL] += 1                     # wrong total
    del windows[t("09:30:00")]                             # missing window
    first["w"] = list(windows.values())
    third["w"].append([t("08:00:00"), 1, 500, 500, 500, 0])  # extra window
    records.update({b"1": orjson.dumps(first), b"3": orjson.dumps(third)})
    part = ChangelogPartition(0)
    for key, value in records.items():  # the partition record stays last
        part.add(key, value)
    live = FixedWindowState(WindowKind.TUMBLING, LIVE)
    load_kind(live, part)
    differences, _ = compare_windows(live, recomputed(PARTITION_0).tumbling)
    assert differences == [
        WindowDifference(1, t("09:00:00"), t("09:05:00"), Aggregate(1, 10011, 10010, 10010),
                         Aggregate(1, 10010, 10010, 10010)),
        WindowDifference(1, t("09:30:00"), t("09:35:00"), None,
                         Aggregate(1, 490000, 490000, 490000)),
        WindowDifference(3, t("08:00:00"), t("08:05:00"), Aggregate(1, 500, 500, 500), None),
    ]
    assert format_differences(differences, "table") == (
        "customer  start                 end                   live count / total"
        "  recomputed count / total\n"
        "       1  2026-03-12T09:00:00Z  2026-03-12T09:05:00Z  1 / 100.11"
        "          1 / 100.10\n"
        "       1  2026-03-12T09:30:00Z  2026-03-12T09:35:00Z  -"
        "                   1 / 4900.00\n"
        "       3  2026-03-12T08:00:00Z  2026-03-12T08:05:00Z  1 / 5.00"
        "            -\n"
    )
    assert orjson.loads(format_differences(differences[:1], "json")) == [
        {"customer_id": 1, "start": "2026-03-12T09:00:00Z", "end": "2026-03-12T09:05:00Z",
         "live": {"count": 1, "total": 100.11, "min": 100.1, "max": 100.1},
         "recomputed": {"count": 1, "total": 100.1, "min": 100.1, "max": 100.1}}]
    assert format_differences(differences[1:], "csv") == (
        "customer_id,start,end,live_count,live_total,recomputed_count,recomputed_total\n"
        "1,2026-03-12T09:30:00Z,2026-03-12T09:35:00Z,,,1,4900.00\n"
        "3,2026-03-12T08:00:00Z,2026-03-12T08:05:00Z,1,5.00,,\n"
    )
    assert format_differences([], "table") == ""


def test_check_shows_min_and_max_when_only_they_differ() -> None:
    live = Aggregate(2, 300, 100, 200)
    other = Aggregate(2, 300, 50, 250)
    text = format_differences([WindowDifference(5, 0, 300_000, live, other)], "table")
    assert "2 / 3.00 (min 1.00, max 2.00)" in text
    assert "2 / 3.00 (min 0.50, max 2.50)" in text


def test_check_does_not_compare_windows_the_live_table_has_let_go() -> None:
    # The live watermark moved on (idle timeout) and expired the 09:00-09:35 windows
    # (end + 30 min retention <= 10:05); the recomputation still holds them.
    config = WindowConfig(tumbling_ms=5 * 60_000, allowed_lateness_ms=5_000,
                          retention_ms=30 * 60_000)
    live_state = recomputed(PARTITION_0[:2], config)
    live_state.tumbling.watermark.restore([t("10:05:00"), t("10:05:00")])
    live_state.advance(None)
    live = as_live(live_state, config)
    assert live.windows_of(1) == []
    differences, compared = compare_windows(live, recomputed(PARTITION_0[:2], config).tumbling)
    assert (differences, compared) == ([], 0)


def test_changelog_partition_keeps_the_last_complete_flush() -> None:
    part = ChangelogPartition(3)
    part.add(b"1", b"a1")
    part.add(b"2", b"b1")
    assert (part.records, part.meta, part.unfinished) == ({}, None, 2)
    part.add(META_KEY, b"m1")
    part.add(b"1", b"a2")
    part.add(b"2", None)
    part.add(META_KEY, b"m2")
    part.add(b"3", b"c1")        # a flush still being written: left out
    part.add(None, b"ignored")
    assert part.records == {b"1": b"a2", META_KEY: b"m2"}
    assert (part.meta, part.unfinished) == (b"m2", 1)


# -- command line ------------------------------------------------------------------------


SETTINGS = Settings.load(tumbling="5m", allowed_lateness="5s")


def options(**given: Any) -> ReportOptions:
    args: dict[str, Any] = {"window": None, "from_": None, "to": None, "customer": None,
                            "fmt": "table", "include_late": False, "check": False}
    args.update(given)
    return parse_report_options(SETTINGS, **args)


def test_report_options_parse_times_windows_and_customers() -> None:
    parsed = options(window="1h", from_="2026-03-12T09:00:00Z", to="1773320400000",
                     customer="42", fmt="csv")
    assert (parsed.window_ms, parsed.start_from, parsed.start_to, parsed.customer,
            parsed.fmt) == (HOUR, t("09:00:00"), t("13:00:00"), 42, "csv")
    assert options().window_ms == 5 * 60_000


@pytest.mark.parametrize(("given", "message"), [
    ({"window": "5q"}, "--window: not a duration: '5q'"),
    ({"window": "0s"}, "--window must be longer than zero, got '0s'"),
    ({"from_": "yesterday"}, "--from: not a time: 'yesterday'"),
    ({"to": "2026-13-01"}, "--to: not a time: '2026-13-01'"),
    ({"from_": "2026-03-12T10:00:00Z", "to": "2026-03-12T10:00:00Z"},
     "--from must be before --to"),
    ({"customer": "-3"}, "--customer: expected a positive integer customer id, got '-3'"),
    ({"customer": "abc"}, "--customer: expected a positive integer customer id, got 'abc'"),
    ({"fmt": "xml"}, "--format: expected one of table, json, csv, got 'xml'"),
    ({"check": True, "window": "1h"}, "--check compares the live tumbling windows "
                                      "(TXSTREAM_TUMBLING=5m): leave out --window or give 5m"),
    ({"check": True, "include_late": True}, "--check recomputes what the live tables hold"),
])
def test_bad_report_options_are_one_line_usage_errors(given: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(UsageError) as info:
        options(**given)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_check_accepts_the_live_window_written_differently() -> None:
    assert options(check=True, window="300s").check is True


def test_versions_are_positive_integers() -> None:
    assert parse_version("--to-version", " 3 ") == 3
    for bad in ("0", "-1", "x", "1.5", ""):
        with pytest.raises(UsageError, match="expected a state version"):
            parse_version("--to-version", bad)


def test_replay_outputs_are_none_versioned_or_live_and_none_by_default() -> None:
    assert ([parse_outputs(text) for text in ("none", " Versioned", "LIVE")], DEFAULT_OUTPUTS) == (
        ["none", "versioned", "live"], "none")
    for bad in ("quiet", "", "live,versioned"):
        with pytest.raises(UsageError, match="--outputs: expected one of none, versioned, live"):
            parse_outputs(bad)


def test_versioned_output_topics_keep_the_input_and_append_the_version() -> None:
    names = TopicNames("t1-", "-v2")
    assert (names.transactions, names.outputs()) == ("t1-transactions", [
        "t1-alerts-v2", "t1-window-results-v2", "t1-sessions-v2", "t1-late-transactions-v2",
        "t1-transactions-dlq-v2"])


def test_progress_line_renders_rate_and_eta() -> None:
    assert render_progress("replay v2", 2500, 10000, 500.0, width=8) == (
        "replay v2 [##......] 2,500/10,000 (25.0%)  500/s  ETA 0:15")
    assert render_progress("replay v2", 0, 10000, None, width=4) == (
        "replay v2 [....] 0/10,000 (0.0%)  -/s  ETA -")
    assert render_progress("r", 10, 10, 3.0, width=2) == "r [##] 10/10 (100.0%)  3/s  ETA 0:00"
    assert render_progress("r", 0, 0, None, width=2) == "r [##] 0/0 (100.0%)  -/s  ETA -"
    assert render_progress("r", 1, 7201, 1.0, width=2).endswith("ETA 2:00:00")


def test_progress_line_off_a_terminal_prints_plain_lines_at_most_every_interval() -> None:
    stream = io.StringIO()
    line = ProgressLine("read", stream, every=0.0)
    line(1, 4)
    line(4, 4)
    line.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("read [") and "1/4 (25.0%)" in lines[0]
    assert "4/4 (100.0%)" in lines[1]
    assert "\r" not in stream.getvalue()
    quiet = io.StringIO()
    slow = ProgressLine("read", quiet, every=3600.0)
    slow(1, 4)
    assert quiet.getvalue() == ""
