"""The ``report`` and ``replay`` commands, and the progress line they draw on stderr."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from faust.cli import option

from .durations import format_duration, parse_duration
from .exceptions import TxstreamError
from .records import MAX_CUSTOMER_ID, parse_time

if TYPE_CHECKING:
    from .faustapp import TxApp
    from .settings import Settings

__all__ = [
    "ProgressLine",
    "ReportOptions",
    "UsageError",
    "parse_report_options",
    "parse_version",
    "register_report_commands",
    "render_progress",
]


class UsageError(ValueError):
    """A command-line argument is wrong (exit status 2, one line, no stack trace)."""


def _fail(command: str, message: str, code: int) -> NoReturn:
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


async def _exit_with(command: str, run: Awaitable[int]) -> None:
    """Await a command's work; a usage error exits 2, a failure 1, a nonzero result with it."""
    try:
        code = await run
    except UsageError as exc:
        _fail(command, str(exc), 2)
    except (TxstreamError, LookupError) as exc:
        _fail(command, str(exc), 1)
    if code:
        raise SystemExit(code)


def _note(command: str, message: str) -> None:
    print(f"txstream {command}: {message}", file=sys.stderr, flush=True)


# -- progress -------------------------------------------------------------------------


def _eta(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_progress(label: str, done: int, total: int, rate: float | None,
                    width: int = 24) -> str:
    """``label [#####.....] done/total (pct) rate/s ETA m:ss`` (rate None: not known yet)."""
    fraction = min(done / total, 1.0) if total > 0 else 1.0
    filled = int(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    text = f"{label} [{bar}] {done:,}/{total:,} ({fraction * 100:.1f}%)"
    if rate is None:
        return f"{text}  -/s  ETA -"
    eta = _eta((total - done) / rate) if rate > 0 and done < total else ("0:00" if done >= total
                                                                         else "-")
    return f"{text}  {rate:,.0f}/s  ETA {eta}"


class ProgressLine:
    """A progress line on stderr: redrawn in place on a terminal (at most 10 times a second),
    otherwise printed as a plain line at most every ``every`` seconds.

    The rate is measured over the last ten seconds, so the ETA follows changes of pace.
    """

    def __init__(self, label: str, stream: IO[str] | None = None, *, every: float = 5.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = 0.1 if self.tty else every
        self._samples: deque[tuple[float, int]] = deque()
        self._last_draw = time.monotonic()
        self._drawn = False

    def rate(self) -> float | None:
        """Records per second over the recent samples, or None before there are two."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > 10.0:
            samples.popleft()
        if now - self._last_draw < self.every:
            return
        self._last_draw = now
        line = render_progress(self.label, done, total, self.rate())
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the redrawn line (on a terminal) so that what follows starts afresh."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# -- report ---------------------------------------------------------------------------


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
    from .report import FORMATS

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
    from agents.transactions import window_config

    from .faustapp import faust_app_id
    from .gctuning import tune_gc
    from .report import (
        check_live,
        compute_report,
        format_differences,
        format_rows,
        report_config,
    )

    tune_gc()  # the report holds the same kind of state as a worker
    settings = app.settings
    source = app.topic_names.transactions
    live = window_config(settings)
    progress = ProgressLine(f"reading {source}")
    if options.check:
        from .changelog import changelog_topic

        changelog = changelog_topic(faust_app_id(settings), "tumbling")
        try:
            result = await check_live(app.bootstrap, source, changelog, live,
                                      on_progress=progress)
        finally:
            progress.close()
        differences = [d for d in result.differences
                       if (options.customer is None or d.customer_id == options.customer)
                       and _in_range(d.start_ms, options)]
        sys.stdout.write(format_differences(differences, options.fmt))
        sys.stdout.flush()
        behind = (f"; the live workers have {result.behind:,} more record(s) to apply, not "
                  f"compared" if result.behind else "")
        _note("report", f"compared {result.windows:,} tumbling window(s) of {changelog} with a "
                        f"recomputation from the first {result.applied:,} record(s) of {source} "
                        f"(as far as the live tables have applied it){behind}")
        if differences:
            _note("report", f"{len(differences)} difference(s) between the live tables and "
                            "the recomputation")
            return 1
        _note("report", "no differences: the live tables equal the recomputation")
        return 0

    config = report_config(live, options.window_ms, include_late=options.include_late)
    try:
        report = await compute_report(app.bootstrap, source, config, customer=options.customer,
                                      on_progress=progress)
    finally:
        progress.close()
    rows = report.rows(start_from=options.start_from, start_to=options.start_to)
    sys.stdout.write(format_rows(rows, options.fmt))
    sys.stdout.flush()
    _note("report", f"{report.events + report.invalid:,} record(s) of {source}: "
                    f"{report.events:,} transaction(s) in {len(rows):,} window(s) of "
                    f"{format_duration(options.window_ms)}"
                    + ("" if options.customer is None else f" (customer {options.customer})"))
    if report.invalid:
        _note("report", f"skipped {report.invalid:,} invalid record(s): they do not parse or "
                        "validate (the live pipeline dead-letters them)")
    if report.late:
        _note("report", f"{report.late:,} late transaction(s) not counted: their window had "
                        f"closed (allowed lateness {settings.allowed_lateness}, as in live "
                        "processing); --include-late counts them")
    return 0


# -- replay ---------------------------------------------------------------------------


def parse_version(name: str, text: str) -> int:
    """A state version number (>= 1) from an option; UsageError if it is not one."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or int(stripped) < 1:
        raise UsageError(f"{name}: expected a state version (an integer >= 1), got {text!r}")
    return int(stripped)


def _datadir_override(app: TxApp, settings: Settings, version: int) -> Path | None:
    """A data directory for ``version`` if this build would put it where the current one is.

    Faust's RocksDB path is ``{datadir}/v1/tables/{table}-{partition}.db`` whatever the app
    id, so two state versions with one ``TXSTREAM_DATADIR`` would open the same files.
    """
    if Path(app.conf.datadir).resolve() != settings.datadir.resolve():
        return None  # the app already keeps each state version's data apart
    return settings.datadir / f"v{version}"


async def _replay(app: TxApp, command: Any, *, to_version: str | None, web_port: str | None,
                  resume: bool, drop_old: bool, drop: str | None, force: bool,
                  timeout: str | None) -> int:
    from .faustapp import faust_app_id
    from .replay import ReplayError, ReplayPlan, run_replay
    from .testing import free_port

    settings = app.settings
    current = settings.state_version
    if drop is not None:
        if to_version is not None or web_port is not None or resume or drop_old or timeout:
            raise UsageError("--drop N only deletes state version N; it takes no other "
                             "option but --force")
        version = parse_version("--drop", drop)
        if version == current:
            raise UsageError(f"--drop {version}: that is the current state version "
                             "(TXSTREAM_STATE_VERSION); switch to another version first")
        return await _drop(app, settings, version, force=force)
    new = current + 1 if to_version is None else parse_version("--to-version", to_version)
    if new == current:
        raise UsageError(f"--to-version {new} is the current state version "
                         "(TXSTREAM_STATE_VERSION); replay into a new one")
    port = free_port()
    if web_port is not None:
        stripped = web_port.strip()
        if not (stripped.isascii() and stripped.isdigit()) or not 0 < int(stripped) < 65536:
            raise UsageError(f"--web-port: expected a TCP port 1..65535, got {web_port!r}")
        port = int(stripped)
    timeout_s: float | None = None
    if timeout is not None:
        try:
            timeout_s = parse_duration(timeout) / 1000
        except ValueError as exc:
            raise UsageError(f"--timeout: {exc}") from None
    if force and not drop_old:
        raise UsageError("--force goes with --drop-old or --drop N")

    datadir = _datadir_override(app, settings, new)
    if datadir is not None and not resume and datadir.exists() and any(datadir.iterdir()):
        raise ReplayError(f"{datadir} holds local state of an earlier state version {new}, "
                          "which this replay would load: delete it, or continue that "
                          "version with --resume")
    env = {"TXSTREAM_STATE_VERSION": str(new), "TXSTREAM_WEB_PORT": str(port)}
    if datadir is not None:
        env["TXSTREAM_DATADIR"] = str(datadir)
    log_path = settings.datadir / f"replay-v{new}.log"
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host
    plan = ReplayPlan(source=app.topic_names.transactions, new_id=faust_app_id(settings, new),
                      new_version=new, env=env, log_path=log_path,
                      stats_url=f"http://{host}:{port}/stats/")
    progress = ProgressLine(f"replay v{new}")
    try:
        result = await run_replay(app.bootstrap, plan, resume=resume, timeout=timeout_s,
                                  on_progress=progress, say=lambda m: _note("replay", m))
    except asyncio.CancelledError:
        progress.close()
        _note("replay", f"interrupted: state version {new} is partly built; continue it with "
                        f"--to-version {new} --resume, or delete it with --drop {new}")
        raise
    progress.close()
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    switch_env = f"TXSTREAM_STATE_VERSION={new}"
    if datadir is not None:
        switch_env += f" TXSTREAM_DATADIR={datadir}"
    say = command.say
    say(f"state version {new} is caught up: {result.events:,} records in "
        f"{result.seconds:.1f} s ({rate:,.0f}/s); tables {plan.new_id}-*-changelog, "
        f"consumer group {plan.new_id}")
    say(f"switch: restart the workers with {switch_env} (other settings unchanged); they "
        f"continue from version {new}'s tables and offsets, and version {current} serves "
        "until then")
    say("outputs: the replay sent alerts, window results, sessions, late events and dead "
        f"letters again, with the same ids as version {current}; consumers drop repeats by id")
    if not drop_old:
        say(f"afterwards delete version {current}: "
            f"TXSTREAM_STATE_VERSION={new} txstream replay --drop {current}")
        return 0
    return await _drop(app, settings, current, force=force)


async def _drop(app: TxApp, settings: Settings, version: int, *, force: bool) -> int:
    from .faustapp import faust_app_id
    from .replay import ReplayError, drop_version

    old_id = faust_app_id(settings, version)
    try:
        dropped = await drop_version(app.bootstrap, old_id, force=force)
    except ReplayError as exc:
        _note("replay", f"state version {version} NOT deleted: {exc}")
        return 1
    topics = ", ".join(dropped.topics) if dropped.topics else "none left"
    group = old_id if dropped.group_deleted else f"{old_id} did not exist"
    print(f"deleted state version {version}: topics: {topics}; consumer group: {group}",
          flush=True)
    print(f"each worker host may still hold version {version}'s RocksDB files under its "
          f"TXSTREAM_DATADIR ({settings.datadir}); delete them once no worker uses them",
          flush=True)
    return 0


# -- registration ---------------------------------------------------------------------


def register_report_commands(app: TxApp) -> None:
    """Define the ``report`` and ``replay`` commands on the app's CLI."""

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

        await _exit_with("report", run())

    @app.command(
        option("--to-version", default=None, metavar="N",
               help="State version to build (default: TXSTREAM_STATE_VERSION + 1)."),
        option("--web-port", default=None, metavar="PORT",
               help="Web port of the replay worker (default: a free port)."),
        option("--resume", is_flag=True, default=False,
               help="Continue a replay into a version that already has state."),
        option("--drop-old", is_flag=True, default=False,
               help="When caught up, delete the current version's changelogs and group."),
        option("--drop", default=None, metavar="N",
               help="Do not replay: delete state version N's changelogs and group."),
        option("--force", is_flag=True, default=False,
               help="Delete even if the version's consumer group still has members."),
        option("--timeout", default=None, metavar="DURATION",
               help="Give up if not caught up within this long, e.g. 30m (default: never)."),
    )
    async def replay(self: Any, to_version: str | None, web_port: str | None, resume: bool,
                     drop_old: bool, drop: str | None, force: bool,
                     timeout: str | None) -> None:
        """Rebuild every table from the start of transactions under a new state version."""
        await _exit_with("replay", _replay(app, self, to_version=to_version, web_port=web_port,
                                           resume=resume, drop_old=drop_old, drop=drop,
                                           force=force, timeout=timeout))
