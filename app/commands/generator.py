"""Deterministic transaction generator: rates, customers, disorder and tunnel bursts."""

from __future__ import annotations

import bisect
import csv
import hashlib
import itertools
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.records.transaction import CURRENCY, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, Transaction

__all__ = ["GeneratorConfig", "generate", "read_transactions_file"]

# Everyday amounts: log-normal, median 35 PLN; ~97% fall in 5-500 PLN.
_AMOUNT_MEDIAN_PLN = 35.0
_AMOUNT_SIGMA = 1.0
_MIN_CENTS = 100
_MAX_EVERYDAY_CENTS = 300_000
_BIG_MIN_CENTS = 100_000
_BIG_MAX_CENTS = 600_000
# Zipf exponent of customer activity: with 1000 customers the busiest buys ~20x as
# often as the median one, yet none dominates a partition (and hence every alert).
_CUSTOMER_SKEW = 0.5


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig:
    """What to generate; the same config always yields the same transactions.

    ``events_per_second`` sets the mean event-time spacing (exponential gaps), not a
    sending rate: pacing the sends is the producer's job. Each event's time is its nominal
    time minus a uniform delay in ``[0, max_delay_ms]``, so arrival is out of order by at
    most that much. Roughly every ``tunnel_every`` events (0 = never) one customer's
    device comes out of a tunnel and sends ``tunnel_size`` stored purchases at once, from
    ``tunnel_age_ms`` in the past. ``count`` includes the burst events; None = endless.
    """

    start_ms: int
    events_per_second: float
    count: int | None = None
    customers: int = 1000
    seed: int = 42
    max_delay_ms: int = 0
    tunnel_every: int = 0
    tunnel_size: int = 30
    tunnel_age_ms: int = 10 * 60_000
    big_spender_share: float = 0.01

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.count is not None and self.count < 0:
            problems.append(f"count must not be negative, got {self.count}")
        if self.customers < 1:
            problems.append(f"customers must be at least 1, got {self.customers}")
        if not (math.isfinite(self.events_per_second) and self.events_per_second > 0):
            problems.append(f"events_per_second must be positive, got {self.events_per_second}")
        if self.max_delay_ms < 0:
            problems.append(f"max_delay_ms must not be negative, got {self.max_delay_ms}")
        if self.tunnel_every < 0:
            problems.append(f"tunnel_every must not be negative, got {self.tunnel_every}")
        if self.tunnel_size < 1:
            problems.append(f"tunnel_size must be at least 1, got {self.tunnel_size}")
        if self.tunnel_age_ms < 0:
            problems.append(f"tunnel_age_ms must not be negative, got {self.tunnel_age_ms}")
        if not 0.0 <= self.big_spender_share <= 1.0:
            problems.append(f"big_spender_share must be within 0..1, got {self.big_spender_share}")
        # The earliest time generated must still be a valid event time, or the generator
        # would feed the dead-letter topic instead of the pipeline.
        earliest = self.start_ms - max(self.max_delay_ms, 0) - max(self.tunnel_age_ms, 0)
        if not (earliest >= MIN_EVENT_TIME_MS and self.start_ms < MAX_EVENT_TIME_MS):
            problems.append(
                "start_ms minus max_delay_ms and tunnel_age_ms must stay within "
                f"2000-01-01 .. 2100-01-01, got start_ms={self.start_ms}"
            )
        if problems:
            msg = "invalid generator config: " + "; ".join(problems)
            raise ValueError(msg)


def generate(config: GeneratorConfig) -> Iterator[Transaction]:
    """Yield transactions in send order (event times out of order within the limits)."""
    rng = random.Random(config.seed)
    # Which customer ids are the busy ones is itself seeded, so it is not always id 1.
    ids = list(range(1, config.customers + 1))
    rng.shuffle(ids)
    weights = (rank**-_CUSTOMER_SKEW for rank in range(1, len(ids) + 1))
    cum_weights = list(itertools.accumulate(weights))
    mean_gap_ms = 1000.0 / config.events_per_second
    mu = math.log(_AMOUNT_MEDIAN_PLN * 100)

    total_weight = cum_weights[-1]
    last = len(ids) - 1

    def customer() -> int:
        # What rng.choices(ids, cum_weights=...) does, without its per-call set-up.
        return ids[bisect.bisect(cum_weights, rng.random() * total_weight, 0, last)]

    def amount() -> int:
        if rng.random() < config.big_spender_share:
            return rng.randint(_BIG_MIN_CENTS, _BIG_MAX_CENTS)
        cents = int(rng.lognormvariate(mu, _AMOUNT_SIGMA))
        return min(max(cents, _MIN_CENTS), _MAX_EVERYDAY_CENTS)

    def make(index: int, customer_id: int, event_time_ms: int) -> Transaction:
        # A hash of seed and index: stable across runs and Python versions, unique per
        # seed, and ~8x cheaper than uuid5 (the benchmark generates millions).
        digest = hashlib.blake2b(f"txstream:{config.seed}:{index}".encode(), digest_size=16)
        tx_id = digest.hexdigest()
        return Transaction(tx_id, customer_id, amount(), CURRENCY, event_time_ms)

    def next_tunnel(after: int) -> int:
        # "Roughly every N": jitter of +-50% so bursts do not line up with anything.
        every = config.tunnel_every
        return after + rng.randint(max(1, every // 2), every + every // 2)

    nominal = float(config.start_ms)
    tunnel_at = next_tunnel(0) if config.tunnel_every else -1
    index = 0
    while config.count is None or index < config.count:
        if index == tunnel_at:
            # The device stored purchases during the tunnel, a few seconds apart, from
            # tunnel_age_ms ago; it sends them all now, in the order they were made.
            owner = customer()
            first = int(nominal) - config.tunnel_age_ms
            spacing = config.tunnel_age_ms / (2 * config.tunnel_size)
            for k in range(config.tunnel_size):
                if config.count is not None and index >= config.count:
                    return
                yield make(index, owner, first + int(k * spacing))
                index += 1
            tunnel_at = next_tunnel(index)
            continue
        nominal += rng.expovariate(1.0) * mean_gap_ms
        delay = rng.randint(0, config.max_delay_ms) if config.max_delay_ms else 0
        yield make(index, customer(), int(nominal) - delay)
        index += 1


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
# CSV cells written into the JSON as numbers when they look like one (the text itself,
# not a float of it, so "1.005" reaches validation as 1.005 and is refused there).
_CSV_NUMBERS = {"customer_id": _JSON_NUMBER, "amount": _JSON_NUMBER, "event_time": _JSON_INTEGER}


def read_transactions_file(path: Path) -> Iterator[tuple[bytes | None, bytes]]:
    """Yield ``(key, value)`` records from a ``.jsonl``/``.json`` or ``.csv`` file.

    Nothing is validated or dropped here: a bad record is sent as it is, so the pipeline
    dead-letters it with a reason. JSONL values are the original line bytes; a ``.json``
    file holding one JSON array yields each element. CSV rows (header row = field names)
    become JSON objects, with customer_id and amount as numbers when they read as one
    (event_time too when it is integer epoch ms), else as text. The key is the
    customer_id text when it can be found, else None.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".jsonl", ".json"):
        return _read_json_lines(path)
    msg = f"{path}: unknown file type {path.suffix!r} (use .jsonl, .json or .csv)"
    raise ValueError(msg)


def _key_of(obj: Any) -> bytes | None:
    """The customer_id of a decoded record as key text, if it has one."""
    if not isinstance(obj, dict):
        return None
    customer_id = obj.get("customer_id")
    if type(customer_id) is int:
        return str(customer_id).encode()
    if isinstance(customer_id, str) and customer_id:
        return customer_id.encode()
    return None


def _read_json_lines(path: Path) -> Iterator[tuple[bytes | None, bytes]]:
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    if data.lstrip().startswith(b"["):
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            msg = f"{path}: not a valid JSON array ({exc.msg}); write one record per line"
            raise ValueError(msg) from None
        for item in items:
            yield _key_of(item), orjson.dumps(item)
        return
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            key = _key_of(orjson.loads(line))
        except orjson.JSONDecodeError:
            key = None
        yield key, line


def _read_csv(path: Path) -> Iterator[tuple[bytes | None, bytes]]:
    # errors="replace": an undecodable byte must not stop the file; the row still goes
    # out (and most likely to the dead-letter topic).
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        for row in csv.DictReader(handle):
            parts: list[bytes] = []
            key: bytes | None = None
            for name, cell in row.items():
                # Cells beyond the header land under None, missing ones are None:
                # leave both out, so validation reports the missing field.
                if name is None or cell is None:
                    continue
                text = cell.strip()
                pattern = _CSV_NUMBERS.get(name)
                if pattern is not None and pattern.fullmatch(text):
                    encoded = text.encode()
                else:
                    encoded = orjson.dumps(cell)
                parts.append(orjson.dumps(name) + b":" + encoded)
                if name == "customer_id" and text:
                    key = text.encode()
            yield key, b"{" + b",".join(parts) + b"}"
