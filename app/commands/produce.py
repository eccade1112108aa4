"""``txstream produce``: the transaction generator, or a JSONL/CSV file, to the input topic."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from faust.cli import option

from app.exceptions import InvalidRecord
from app.logs import install_repeat_filter
from app.txapp import TxApp

from .usage import exit_with, fail

__all__ = ["register"]


def _event_time_of(value: bytes) -> int | None:
    """A file record's event time for the Kafka timestamp, if it has a readable one."""
    from app.records.times import parse_time
    try:
        event_time = orjson.loads(value).get("event_time")
        if isinstance(event_time, int) and not isinstance(event_time, bool):
            return event_time
        return parse_time(event_time) if isinstance(event_time, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError, InvalidRecord):
        return None


def _existing_file() -> Any:
    """A click path type for existing files."""
    import click

    return click.Path(exists=True, dir_okay=False)


def register(app: TxApp) -> None:
    """Define the ``produce`` command on the app's CLI."""

    async def _produce(self: Any, rate: float, count: int | None, customers: int, seed: int,
                       max_delay: str, tunnel_every: int, tunnel_size: int,
                       file_: str | None) -> int:
        # Wrapped so that a broker that cannot be reached ends the command in one line.
        from app.durations import parse_duration
        from app.kafka.produce import send_records
        from app.records.transaction import encode_transaction, transaction_key

        from .generator import GeneratorConfig, generate, read_transactions_file

        topic = app.topic_names.transactions
        if file_ is not None:
            path = Path(file_)
            try:
                records = [(key, value, _event_time_of(value))
                           for key, value in read_transactions_file(path)]
            except (OSError, ValueError) as exc:
                fail("produce", str(exc), 2)
            total = len(records)

            def progress(done: int) -> None:
                print(f"\r{done:,}/{total:,} records sent ({done * 100 // max(total, 1)}%)",
                      end="", file=sys.stderr, flush=True)

            n = await send_records(app.kafka, topic, records,
                                   on_progress=progress if total >= 10_000 else None)
            if total >= 10_000:
                print(file=sys.stderr)
            self.say(f"sent {n} records from {path} to {topic}")
            return 0
        try:
            delay_ms = parse_duration(max_delay)
            config = GeneratorConfig(start_ms=int(time.time() * 1000),
                                     events_per_second=rate if rate > 0 else 1000.0,
                                     count=count, customers=customers, seed=seed,
                                     max_delay_ms=delay_ms, tunnel_every=tunnel_every,
                                     tunnel_size=tunnel_size)
        except ValueError as exc:
            fail("produce", str(exc), 2)
        generated = ((transaction_key(tx), encode_transaction(tx), tx.event_time_ms)
                     for tx in generate(config))
        self.say(f"producing to {topic} at {app.settings.broker} "
                 f"({'as fast as possible' if rate <= 0 else f'{rate:g}/s'}); Ctrl-C stops")
        n = await send_records(app.kafka, topic, generated, rate=rate if rate > 0 else None)
        self.say(f"sent {n} transactions")
        return 0

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
        option("--file", "file_", type=_existing_file(), default=None,
               help="Send a .jsonl or .csv file of transactions instead."),
    )
    async def produce(self: Any, rate: float, count: int | None, customers: int, seed: int,
                      max_delay: str, tunnel_every: int, tunnel_size: int,
                      file_: str | None) -> None:
        """Send transactions: the generator, or --file F (JSONL or CSV)."""
        install_repeat_filter()
        await exit_with("produce", _produce(self, rate, count, customers, seed, max_delay,
                                             tunnel_every, tunnel_size, file_), app.kafka)
