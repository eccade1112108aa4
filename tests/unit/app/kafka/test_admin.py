"""Unit tests of broker URL parsing."""

from __future__ import annotations

import pytest

from app.exceptions import BrokerError
from app.kafka.security import parse_broker_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka://localhost:9092/", "localhost:9092"),
        ("KAFKA://broker-1.example.com:19092", "broker-1.example.com:19092"),
        ("kafka://a:9092,b:9093", "a:9092,b:9093"),
        ("kafka://a:9092;kafka://b:9093", "a:9092,b:9093"),  # Faust's multi-URL form
        ("kafka://a:9092, kafka://b:9093", "a:9092,b:9093"),
        ("localhost:9092", "localhost:9092"),
        ("  kafka://kafka:29092  ", "kafka:29092"),
        ("kafka://[::1]:9092", "[::1]:9092"),
    ],
)
def test_parse_broker_url_accepts(url: str, expected: str) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "kafka://",
        "kafka://localhost",
        "localhost",
        "kafka://localhost:port",
        "kafka://localhost:0",
        "kafka://localhost:70000",
        "http://localhost:9092",
        "kafka://a:9092,",
        "kafka://user@host:9092",
        "kafka://host:9092/path",
    ],
)
def test_parse_broker_url_rejects_garbage_naming_it(url: str) -> None:
    with pytest.raises(BrokerError) as info:
        parse_broker_url(url)
    assert repr(url) in str(info.value)
