"""The ``txstream`` command line: Faust's CLI with the app, plus txstream's own commands."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from faust.cli import option

from .exceptions import SettingsError, TxstreamError
from .faustapp import TxApp, create_app
from .settings import Settings

__all__ = ["main"]


def _fail(message: str, code: int = 2) -> None:
    print(f"txstream: {message}", file=sys.stderr)
    raise SystemExit(code)


def _event_time_of(value: bytes) -> int | None:
    from .exceptions import InvalidRecord
    from .records import parse_time
    try:
        event_time = orjson.loads(value).get("event_time")
        if isinstance(event_time, int) and not isinstance(event_time, bool):
            return event_time
        return parse_time(event_time) if isinstance(event_time, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError, InvalidRecord):
        return None


def install_commands(app: TxApp) -> None:
    """Register txstream's commands on the Faust app's CLI."""

    @app.command(
        option("--rate", type=float, default=50.0, show_default=True,
               help="Events per second (0 = as fast as possible)."),
        option("--count", type=int, default=None, help="Stop after this many events."),
        option("--customers", type=int, default=1000, show_default=True),
        option("--seed", type=int, default=42, show_default=True),
        option("--max-delay", default="3s", show_default=True,
               help="Out-of-order: random delay between event time and send time."),
        option("--tunnel-every", type=int, default=0, show_default=True,
               help="Roughly every N events a burst of old events (0 = never)."),
        option("--tunnel-size", type=int, default=30, show_default=True),
        option("--file", "file_", type=click_path(), default=None,
               help="Send a .jsonl or .csv file of transactions instead."),
    )
    async def produce(self: Any, rate: float, count: int | None, customers: int, seed: int,
                      max_delay: str, tunnel_every: int, tunnel_size: int,
                      file_: str | None) -> None:
        """Send transactions: the generator, or --file F (JSONL or CSV)."""
        from .durations import parse_duration
        from .generator import GeneratorConfig, generate, read_transactions_file
        from .produce import send_records
        from .records import encode_transaction, transaction_key

        topic = app.topic_names.transactions
        if file_ is not None:
            path = Path(file_)
            try:
                records = [(key, value, _event_time_of(value))
                           for key, value in read_transactions_file(path)]
            except (OSError, ValueError) as exc:
                _fail(str(exc))
            total = len(records)

            def progress(done: int) -> None:
                print(f"\r{done:,}/{total:,} records sent ({done * 100 // max(total, 1)}%)",
                      end="", file=sys.stderr, flush=True)

            n = await send_records(app.bootstrap, topic, records,
                                   on_progress=progress if total >= 10_000 else None)
            if total >= 10_000:
                print(file=sys.stderr)
            self.say(f"sent {n} records from {path} to {topic}")
            return
        try:
            delay_ms = parse_duration(max_delay)
            config = GeneratorConfig(start_ms=int(time.time() * 1000),
                                     events_per_second=rate if rate > 0 else 1000.0,
                                     count=count, customers=customers, seed=seed,
                                     max_delay_ms=delay_ms, tunnel_every=tunnel_every,
                                     tunnel_size=tunnel_size)
        except ValueError as exc:
            _fail(str(exc))
        generated = ((transaction_key(tx), encode_transaction(tx), tx.event_time_ms)
                     for tx in generate(config))
        self.say(f"producing to {topic} at {app.settings.broker} "
                 f"({'as fast as possible' if rate <= 0 else f'{rate:g}/s'}); Ctrl-C stops")
        n = await send_records(app.bootstrap, topic, generated, rate=rate if rate > 0 else None)
        self.say(f"sent {n} transactions")

    @app.command()
    async def alerts(self: Any) -> None:
        """Print alerts as they arrive (one JSON object per line)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from .kafka_admin import ensure_topics, true_end_offsets

        topic = app.topic_names.alerts
        await ensure_topics(app.bootstrap, {topic: app.settings.partitions})
        consumer = AIOKafkaConsumer(bootstrap_servers=app.bootstrap, group_id=None)
        await consumer.start()
        try:
            # Start exactly at the end of every partition (seek-to-end can land inside the
            # last batch on the embedded broker and print old alerts).
            tps = [TopicPartition(topic, p) for p in sorted(
                consumer.partitions_for_topic(topic) or range(app.settings.partitions))]
            consumer.assign(tps)
            for tp, end in (await true_end_offsets(app.bootstrap, tps)).items():
                consumer.seek(tp, end)
            print(f"listening for alerts on {topic} (Ctrl-C stops)", file=sys.stderr,
                  flush=True)
            seen: set[str] = set()
            async for record in consumer:
                alert = orjson.loads(record.value)
                if alert.get("alert_id") in seen:
                    continue  # a repeat after a crash: same deterministic id
                seen.add(alert.get("alert_id"))
                print(orjson.dumps(alert).decode(), flush=True)
        finally:
            await consumer.stop()

    @app.command()
    async def broker(self: Any) -> None:
        """Run the embedded broker in the foreground and print its URL."""
        from .broker import EmbeddedBroker

        embedded = EmbeddedBroker()
        embedded.start()
        print(embedded.url, flush=True)
        self.say("embedded broker (memory storage: it forgets everything when it stops);"
                 " Ctrl-C stops it")
        try:
            await _wait_for_signal()
        finally:
            embedded.stop()

    @app.command(
        option("--rate", type=float, default=50.0, show_default=True,
               help="Generator events per second."),
        option("--customers", type=int, default=200, show_default=True),
    )
    async def demo(self: Any, rate: float, customers: int) -> None:
        """Embedded broker + a worker + the generator; prints the dashboard URL."""
        from .demo import run_demo

        await run_demo(app.settings, rate=rate, customers=customers, say=self.say)

    from .replay_cli import register_report_commands
    register_report_commands(app)


def click_path() -> Any:
    """A click path type for existing files."""
    import click

    return click.Path(exists=True, dir_okay=False)


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    """Entry point of the ``txstream`` console script and ``python -m app``."""
    try:
        settings = Settings.load()
    except SettingsError as exc:
        _fail(str(exc))
    try:
        app = create_app(settings)
        install_commands(app)
        app.main()
    except TxstreamError as exc:
        _fail(str(exc), code=1)

