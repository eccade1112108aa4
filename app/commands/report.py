"""``txstream report``: the batch report and ``--check``, from the stream through the same core."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from faust.cli import option

from app.durations import format_duration, parse_duration
from app.records.times import parse_time
from app.records.transaction import MAX_CUSTOMER_ID
from app.settings import Settings
from app.txapp import TxApp

from .progress import ProgressLine
from .usage import UsageError, exit_with, note

__all__ = ["ReportOptions", "parse_report_options", "register"]


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """``txstream report`` arguments, checked."""

    window_ms: int
    start_from: int | None
    start_to: int | None
    customer: int | None
    fmt: str
    include_late: bool
    check: bool


def _customer(text: str) -> int:
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or not 0 < int(stripped) <= MAX_CUSTOMER_ID:
        raise UsageError(f"--customer: expected a positive integer customer id, got {text!r}")
    return int(stripped)


def parse_report_options(settings: Settings, *, window: str | None, from_: str | None,
                         to: str | None, customer: str | None, fmt: str, include_late: bool,
                         check: bool) -> ReportOptions:
    """Check ``report``'s arguments against each other and the settings; UsageError if wrong."""
    from app.kappa.report import FORMATS

    live_ms = settings.tumbling_ms
    if window is None:
        window_ms = live_ms
    else:
        try:
            window_ms = parse_duration(window)
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None
        if window_ms <= 0:
            raise UsageError(f"--window must be longer than zero, got {window!r}")
    times: list[int | None] = []
    for name, text in (("--from", from_), ("--to", to)):
        try:
            times.append(None if text is None else parse_time(text))
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}") from None
    start_from, start_to = times
    if start_from is not None and start_to is not None and start_from >= start_to:
        raise UsageError("--from must be before --to (windows with from <= start < to)")
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if check and window_ms != live_ms:
        raise UsageError(f"--check compares the live tumbling windows "
                         f"(TXSTREAM_TUMBLING={settings.tumbling}): leave out --window or "
                         f"give {format_duration(live_ms)}")
    if check and include_late:
        raise UsageError("--check recomputes what the live tables hold, which never "
                         "includes late events: leave out --include-late")
    return ReportOptions(window_ms, start_from, start_to,
                         None if customer is None else _customer(customer), fmt,
                         include_late, check)


def _in_range(start: int, options: ReportOptions) -> bool:
    return ((options.start_from is None or start >= options.start_from)
            and (options.start_to is None or start < options.start_to))


async def _report(app: TxApp, options: ReportOptions) -> int:
    from app.gctuning import tune_gc
    from app.kappa.report import (
        check_live,
        compute_report,
        format_differences,
        format_rows,
        report_config,
    )
    from app.records.decode import Decoder
    from app.settings import window_config
    from app.txapp import faust_app_id

    tune_gc()  # the report holds the same kind of state as a worker
    settings = app.settings
    source = app.topic_names.transactions
    live = window_config(settings)
    # Rejects what live processing dead-letters, the bound on future event times included
    # (taken against the wall clock now: see the README).
    decoder = Decoder(settings.max_event_ahead_ms)
    progress = ProgressLine(f"reading {source}")
    if options.check:
        from app.kafka.changelog import changelog_topic

        changelog = changelog_topic(faust_app_id(settings), "tumbling")
        try:
            result = await check_live(app.kafka, source, changelog, live,
                                      decoder=decoder, on_progress=progress)
        finally:
            progress.close()
        differences = [d for d in result.differences
                       if (options.customer is None or d.customer_id == options.customer)
                       and _in_range(d.start_ms, options)]
        sys.stdout.write(format_differences(differences, options.fmt))
        sys.stdout.flush()
        behind = (f"; the live workers have {result.behind:,} more record(s) to apply, not "
                  f"compared" if result.behind else "")
        note("report", f"compared {result.windows:,} tumbling window(s) of {changelog} with a "
                        f"recomputation from the first {result.applied:,} record(s) of {source} "
                        f"(as far as the live tables have applied it){behind}")
        if result.skipped:
            note("report", f"skipped {result.skipped:,} record(s) of {changelog} that are not "
                           "txstream's state records (foreign or damaged)")
        if differences:
            note("report", f"{len(differences)} difference(s) between the live tables and "
                            "the recomputation")
            return 1
        note("report", "no differences: the live tables equal the recomputation")
        return 0

    config = report_config(live, options.window_ms, include_late=options.include_late)
    try:
        report = await compute_report(app.kafka, source, config, customer=options.customer,
                                      decoder=decoder, on_progress=progress)
    finally:
        progress.close()
    rows = report.rows(start_from=options.start_from, start_to=options.start_to)
    sys.stdout.write(format_rows(rows, options.fmt))
    sys.stdout.flush()
    note("report", f"{report.events + report.invalid:,} record(s) of {source}: "
                    f"{report.events:,} transaction(s) in {len(rows):,} window(s) of "
                    f"{format_duration(options.window_ms)}"
                    + ("" if options.customer is None else f" (customer {options.customer})"))
    if report.invalid:
        conflicts = (f", {report.conflicts:,} of them repeating an earlier tx_id with other "
                     "content" if report.conflicts else "")
        note("report", f"skipped {report.invalid:,} invalid record(s){conflicts}: they do not "
                        "parse or validate (the live pipeline dead-letters them)")
    if report.duplicates:
        note("report", f"skipped {report.duplicates:,} duplicate(s): records repeating an "
                        "earlier tx_id with the same content, within the duplicate horizon "
                        f"({format_duration(settings.duplicate_horizon_ms)}), as live processing "
                        "does")
    if report.late:
        note("report", f"{report.late:,} late transaction(s) not counted: their window had "
                        f"closed (allowed lateness {settings.allowed_lateness}, as in live "
                        "processing); --include-late counts them")
    return 0


def register(app: TxApp) -> None:
    """Define the ``report`` command on the app's CLI."""

    @app.command(
        option("--window", default=None, metavar="DURATION",
               help="Window size, e.g. 1h (default: TXSTREAM_TUMBLING)."),
        option("--from", "from_", default=None, metavar="TIME",
               help="Only windows starting at or after this time (ISO 8601 or epoch ms)."),
        option("--to", "to", default=None, metavar="TIME",
               help="Only windows starting before this time (ISO 8601 or epoch ms)."),
        option("--customer", default=None, metavar="ID", help="Only this customer's transactions."),
        option("--format", "fmt", default="table", show_default=True, metavar="FORMAT",
               help="table, json or csv."),
        option("--include-late", is_flag=True, default=False,
               help="Count events that arrived after their window closed (live drops them)."),
        option("--check", is_flag=True, default=False,
               help="Compare the live tumbling tables with a recomputation; exit 1 if "
                    "they differ."),
    )
    async def report(self: Any, window: str | None, from_: str | None, to: str | None,
                     customer: str | None, fmt: str, include_late: bool, check: bool) -> None:
        """Count, total and average per window over the whole transactions topic."""
        async def run() -> int:
            options = parse_report_options(app.settings, window=window, from_=from_, to=to,
                                           customer=customer, fmt=fmt,
                                           include_late=include_late, check=check)
            return await _report(app, options)

        await exit_with("report", run(), app.kafka)
