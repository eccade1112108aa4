"""Unit tests for app.generator: determinism, disorder, tunnel bursts and file reading."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import orjson
import pytest

from app.commands.generator import GeneratorConfig, generate, read_transactions_file
from app.exceptions import InvalidRecord
from app.records.transaction import (
    Transaction,
    encode_transaction,
    parse_transaction,
    transaction_key,
)

# 2026-03-12T09:00:00Z
START = 1_773_306_000_000


def config(**changes: object) -> GeneratorConfig:
    options: dict[str, object] = {"start_ms": START, "events_per_second": 10.0, "count": 1000}
    options.update(changes)
    return GeneratorConfig(**options)  # type: ignore[arg-type]


def test_exact_output__pinned() -> None:
    # Pins the algorithm: a change here changes every seeded demo and benchmark.
    got = list(generate(config(count=3, customers=100, seed=7)))
    assert got == [
        Transaction("7eb5005a11f5c56167e1193ecd97843d", 100, 5024, "PLN", START + 7),
        Transaction("e59bbdec4f3c7ed794b397a79ffd725b", 62, 6132, "PLN", START + 138),
        Transaction("f74631ff9d4b89b3de28bf81bfa4bf22", 86, 11309, "PLN", START + 264),
    ]


def test_deterministic() -> None:
    options = {"max_delay_ms": 3000, "tunnel_every": 100}
    assert list(generate(config(**options))) == list(generate(config(**options)))


def test_seed_changes_output() -> None:
    first = [tx.tx_id for tx in generate(config(count=10, seed=1))]
    second = [tx.tx_id for tx in generate(config(count=10, seed=2))]
    assert set(first).isdisjoint(second)


@pytest.mark.parametrize("count", [0, 1, 999, 1000])
def test_count(count: int) -> None:
    assert sum(1 for _ in generate(config(count=count, tunnel_every=50))) == count


def test_endless() -> None:
    endless = generate(config(count=None))
    assert len(list(itertools.islice(endless, 5000))) == 5000


def test_valid_records__round_trip() -> None:
    for tx in generate(config(count=2000, max_delay_ms=5000, tunnel_every=100)):
        assert parse_transaction(encode_transaction(tx), transaction_key(tx)) == tx


def test_unique_tx_ids() -> None:
    txs = list(generate(config(count=5000, tunnel_every=100)))
    assert len({tx.tx_id for tx in txs}) == 5000


def test_customers_in_range_and_skewed() -> None:
    counts = Counter(tx.customer_id for tx in generate(config(count=20_000, customers=1000)))
    assert min(counts) >= 1
    assert max(counts) <= 1000
    busiest = counts.most_common(1)[0][1]
    median = sorted(counts.values())[len(counts) // 2]
    assert busiest >= 10 * median


def test_amounts() -> None:
    amounts = [tx.amount_cents for tx in generate(config(count=20_000))]
    everyday = sum(500 <= cents <= 50_000 for cents in amounts) / len(amounts)
    big = sum(cents >= 100_000 for cents in amounts) / len(amounts)
    assert everyday >= 0.9
    assert 0.005 <= big <= 0.02
    assert min(amounts) >= 100
    assert max(amounts) <= 600_000


def test_event_time_spacing__mean_rate() -> None:
    txs = list(generate(config(count=10_000, events_per_second=100.0)))
    span_ms = txs[-1].event_time_ms - txs[0].event_time_ms
    assert 95_000 <= span_ms <= 105_000  # 10,000 events at 100/s: about 100 s


def test_in_order_without_delay() -> None:
    times = [tx.event_time_ms for tx in generate(config())]
    assert times == sorted(times)


def test_disorder_bounded_by_max_delay() -> None:
    txs = list(generate(config(count=5000, max_delay_ms=2000)))
    highest = 0
    worst = 0
    for tx in txs:
        worst = max(worst, highest - tx.event_time_ms)
        highest = max(highest, tx.event_time_ms)
    assert 1000 < worst <= 2000  # out of order, but never beyond the limit


def test_tunnel_bursts() -> None:
    cfg = config(count=1000, tunnel_every=100, tunnel_size=5, tunnel_age_ms=600_000)
    txs = list(generate(cfg))
    highest = 0
    late: list[tuple[int, Transaction]] = []
    for index, tx in enumerate(txs):
        if tx.event_time_ms < highest - 60_000:
            late.append((index, tx))
        highest = max(highest, tx.event_time_ms)
    bursts = [list(group) for _, group in itertools.groupby(late, key=lambda it: it[1].customer_id)]
    assert 5 <= len(bursts) <= 20  # roughly every 100 of 1000 events
    for burst in bursts:
        indexes = [index for index, _ in burst]
        assert indexes == list(range(indexes[0], indexes[0] + 5))  # sent back to back
        times = [tx.event_time_ms for _, tx in burst]
        assert times == sorted(times)  # in the order the device stored them
        newest_before = max(tx.event_time_ms for tx in txs[: indexes[0]])
        assert 595_000 <= newest_before - times[0] <= 600_000  # from tunnel_age_ms ago


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": -1}, "count must not be negative, got -1"),
        ({"customers": 0}, "customers must be at least 1, got 0"),
        ({"events_per_second": 0.0}, "events_per_second must be positive, got 0.0"),
        ({"events_per_second": float("nan")}, "events_per_second must be positive, got nan"),
        ({"max_delay_ms": -1}, "max_delay_ms must not be negative, got -1"),
        ({"tunnel_every": -1}, "tunnel_every must not be negative, got -1"),
        ({"tunnel_size": 0}, "tunnel_size must be at least 1, got 0"),
        ({"tunnel_age_ms": -5}, "tunnel_age_ms must not be negative, got -5"),
        ({"big_spender_share": 1.5}, "big_spender_share must be within 0..1, got 1.5"),
        (
            {"start_ms": 946_684_800_000, "max_delay_ms": 1},
            "start_ms minus max_delay_ms and tunnel_age_ms must stay within "
            "2000-01-01 .. 2100-01-01, got start_ms=946684800000",
        ),
    ],
)
def test_config_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        config(**changes)
    assert str(info.value) == f"invalid generator config: {message}"


def test_config_validation__all_problems_listed() -> None:
    with pytest.raises(ValueError) as info:
        config(customers=0, tunnel_size=0)
    assert str(info.value) == (
        "invalid generator config: customers must be at least 1, got 0; "
        "tunnel_size must be at least 1, got 0"
    )


# -- files -----------------------------------------------------------------------------


def test_read_jsonl(tmp_path: Path) -> None:
    lines = [
        b'{"tx_id":"a","customer_id":7,"amount":12.5,"currency":"PLN","event_time":"2026-03-12T09:00:00Z"}',
        b"",
        b"   ",
        b"{not json",
        b'{"tx_id":"b","customer_id":"8","amount":1,"currency":"PLN","event_time":0}',
        b'{"tx_id":"c","amount":1}',
        b"[1,2]",
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\n")
    assert list(read_transactions_file(path)) == [
        (b"7", lines[0]),
        (None, b"{not json"),
        (b"8", lines[4]),
        (None, lines[5]),
        (None, b"[1,2]"),
    ]
    assert parse_transaction(lines[0], b"7") == Transaction("a", 7, 1250, "PLN", START)


def test_read_json_array(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b' [{"customer_id": 7, "amount": 1.5}, {"x": 1}]\n')
    assert list(read_transactions_file(path)) == [
        (b"7", b'{"customer_id":7,"amount":1.5}'),
        (None, b'{"x":1}'),
    ]


def test_read_json_lines_with_json_extension(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{"customer_id": 7}\n{"customer_id": 8}\n')
    assert [key for key, _ in read_transactions_file(path)] == [b"7", b"8"]


def test_read_broken_json_array(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'[{"customer_id": 7},')
    with pytest.raises(ValueError) as info:
        list(read_transactions_file(path))
    assert str(info.value) == (
        f"{path}: not a valid JSON array (unexpected end of data); write one record per line"
    )


def test_read_csv(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "tx_id,customer_id,amount,currency,event_time\n"
        "a,7,12.50,PLN,2026-03-12T09:00:00Z\n"
        "b,8,abc,PLN,2026-03-12T09:00:00Z\n"
        "c,x9,1.005,PLN,1773306000000\n"
        "\n"
        "d,,5,PLN\n"
        'e,10,"1,5",PLN,2026-03-12T09:00:00Z\n',
        encoding="utf-8",
    )
    records = list(read_transactions_file(path))
    assert records == [
        (
            b"7",
            b'{"tx_id":"a","customer_id":7,"amount":12.50,"currency":"PLN",'
            b'"event_time":"2026-03-12T09:00:00Z"}',
        ),
        (
            b"8",
            b'{"tx_id":"b","customer_id":8,"amount":"abc","currency":"PLN",'
            b'"event_time":"2026-03-12T09:00:00Z"}',
        ),
        (
            b"x9",
            b'{"tx_id":"c","customer_id":"x9","amount":1.005,"currency":"PLN",'
            b'"event_time":1773306000000}',
        ),
        (None, b'{"tx_id":"d","customer_id":"","amount":5,"currency":"PLN"}'),
        (
            b"10",
            b'{"tx_id":"e","customer_id":10,"amount":"1,5","currency":"PLN",'
            b'"event_time":"2026-03-12T09:00:00Z"}',
        ),
    ]
    reasons = []
    for key, value in records:
        try:
            parse_transaction(value, key)
        except InvalidRecord as exc:
            reasons.append(exc.reason)
        else:
            reasons.append("ok")
    assert reasons == [
        "ok",
        'amount must be a JSON number, got "abc"',
        'customer_id must be a positive integer, got "x9"',
        "missing field: event_time",
        'amount must be a JSON number, got "1,5"',
    ]
    assert orjson.loads(records[0][1])["amount"] == 12.5


def test_read_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "in.xml"
    with pytest.raises(ValueError) as info:
        read_transactions_file(path)
    assert str(info.value) == f"{path}: unknown file type '.xml' (use .jsonl, .json or .csv)"


def test_generated_file_round_trip(tmp_path: Path) -> None:
    txs = list(generate(config(count=50, max_delay_ms=1000)))
    path = tmp_path / "gen.jsonl"
    path.write_bytes(b"\n".join(encode_transaction(tx) for tx in txs) + b"\n")
    parsed = [parse_transaction(value, key) for key, value in read_transactions_file(path)]
    assert parsed == txs
