"""``txstream replay``: Kappa reprocessing under a new state version, and dropping old ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.cli import option

from app.durations import parse_duration
from app.settings import OUTPUT_MODES, Settings
from app.topics import TopicNames
from app.txapp import TxApp

from .progress import ProgressLine
from .usage import UsageError, exit_with, note

__all__ = ["DEFAULT_OUTPUTS", "parse_outputs", "parse_version", "register"]

#: Where a replay's worker sends outputs unless told: nowhere. A replay then changes
#: nothing downstream (no repeats on the live topics, no topics created); the live
#: version keeps serving and emitting.
DEFAULT_OUTPUTS = "none"


def parse_version(name: str, text: str) -> int:
    """A state version number (>= 1) from an option; UsageError if it is not one."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or int(stripped) < 1:
        raise UsageError(f"{name}: expected a state version (an integer >= 1), got {text!r}")
    return int(stripped)


def parse_outputs(text: str) -> str:
    """``--outputs``: none, versioned or live; UsageError if it is none of them."""
    mode = text.strip().lower()
    if mode not in OUTPUT_MODES:
        raise UsageError(f"--outputs: expected one of none, versioned, live, got {text!r}")
    return mode


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
                  timeout: str | None, outputs: str | None) -> int:
    from app.kappa.replay import ReplayError, ReplayPlan, run_replay
    from app.process import free_port
    from app.tls import web_client_context
    from app.txapp import faust_app_id

    settings = app.settings
    current = settings.state_version
    if drop is not None:
        if (to_version is not None or web_port is not None or resume or drop_old or timeout
                or outputs is not None):
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
    mode = parse_outputs(DEFAULT_OUTPUTS if outputs is None else outputs)
    # The new version's own output topics, beside the live ones (created before its worker
    # starts, with the configured partition count).
    versioned = TopicNames(settings.topic_prefix, f"-v{new}")

    datadir = _datadir_override(app, settings, new)
    if datadir is not None and not resume and datadir.exists() and any(datadir.iterdir()):
        raise ReplayError(f"{datadir} holds local state of an earlier state version {new}, "
                          "which this replay would load: delete it, or continue that "
                          "version with --resume")
    env = {"TXSTREAM_STATE_VERSION": str(new), "TXSTREAM_WEB_PORT": str(port),
           "TXSTREAM_OUTPUTS": mode}
    if datadir is not None:
        env["TXSTREAM_DATADIR"] = str(datadir)
    log_path = settings.datadir / f"replay-v{new}.log"
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host
    plan = ReplayPlan(source=app.topic_names.transactions, new_id=faust_app_id(settings, new),
                      new_version=new, env=env, log_path=log_path,
                      stats_url=f"{settings.web_scheme}://{host}:{port}/stats/?local=1",
                      stats_token=settings.web_token, stats_tls=web_client_context(settings),
                      create_topics=(dict.fromkeys(versioned.outputs(), settings.partitions)
                                     if mode == "versioned" else {}))
    progress = ProgressLine(f"replay v{new}")
    try:
        result = await run_replay(app.kafka, plan, resume=resume, timeout=timeout_s,
                                  on_progress=progress, say=lambda m: note("replay", m))
    except asyncio.CancelledError:
        progress.close()
        note("replay", f"interrupted: state version {new} is partly built; continue it with "
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
    if mode == "versioned":
        switch_env += " TXSTREAM_OUTPUTS=versioned"
    say(f"switch: restart the workers with {switch_env} (other settings unchanged); they "
        f"continue from version {new}'s tables and offsets, and version {current} serves "
        "until then")
    say(_outputs_note(mode, versioned, current, new))
    if not drop_old:
        say(f"afterwards delete version {current}: "
            f"TXSTREAM_STATE_VERSION={new} txstream replay --drop {current}")
        return 0
    return await _drop(app, settings, current, force=force)


def _outputs_note(mode: str, versioned: TopicNames, current: int, new: int) -> str:
    """What the replay did with its outputs, and what the switch does with them."""
    if mode == "none":
        return ("outputs: none were sent (state only); the live topics have only version "
                f"{current}'s. After the switch, version {new} sends to the live topics from "
                "where the replay stopped")
    if mode == "versioned":
        return (f"outputs: sent to {', '.join(versioned.outputs())} (the same ids as on the "
                "live topics); move consumers there once they have caught up. With "
                "TXSTREAM_OUTPUTS=versioned the switched workers keep writing there; without "
                "it they write to the live topics")
    return ("outputs: the replay sent alerts, window results, sessions, late events and dead "
            f"letters again, with the same ids as version {current}; consumers drop repeats "
            "by id")


async def _drop(app: TxApp, settings: Settings, version: int, *, force: bool) -> int:
    from app.kappa.replay import ReplayError, drop_version
    from app.txapp import faust_app_id

    old_id = faust_app_id(settings, version)
    outputs = TopicNames(settings.topic_prefix, f"-v{version}").outputs()
    try:
        dropped = await drop_version(app.kafka, old_id, force=force, output_topics=outputs)
    except ReplayError as exc:
        note("replay", f"state version {version} NOT deleted: {exc}")
        return 1
    topics = ", ".join(dropped.topics) if dropped.topics else "none left"
    group = old_id if dropped.group_deleted else f"{old_id} did not exist"
    print(f"deleted state version {version}: topics: {topics}; consumer group: {group}",
          flush=True)
    print(f"each worker host may still hold version {version}'s RocksDB files under its "
          f"TXSTREAM_DATADIR ({settings.datadir}); delete them once no worker uses them",
          flush=True)
    return 0


def register(app: TxApp) -> None:
    """Define the ``replay`` command on the app's CLI."""

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
        option("--outputs", default=None, metavar="MODE",
               help="Where the replay sends alerts, window results, sessions, late events and "
                    "dead letters: none (default: state only), versioned (topics named "
                    "alerts-vN, ...) or live (the live topics, again)."),
    )
    async def replay(self: Any, to_version: str | None, web_port: str | None, resume: bool,
                     drop_old: bool, drop: str | None, force: bool,
                     timeout: str | None, outputs: str | None) -> None:
        """Rebuild every table from the start of transactions under a new state version."""
        await exit_with("replay", _replay(app, self, to_version=to_version, web_port=web_port,
                                           resume=resume, drop_old=drop_old, drop=drop,
                                           force=force, timeout=timeout, outputs=outputs),
                    app.kafka)
