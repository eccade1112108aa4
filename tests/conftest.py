"""Shared fixtures: one broker per test session, unique names, free ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from app.kafka.broker import EmbeddedBroker
from app.kafka.security import KafkaConnection, kafka_connection, parse_broker_url
from app.settings import Settings
from app.testing import free_port as _free_port

__all__ = ["connection_to"]

# Property tests check results, not speed: no per-example deadline, which a loaded CI
# machine (the suite runs brokers and workers beside them) would turn into flaky failures.
settings.register_profile("txstream", deadline=None)
settings.load_profile("txstream")

# Set to a kafka://host:port URL to run the integration tests against that broker
# (for example Apache Kafka from docker-compose) instead of an embedded Tansu.
BROKER_ENV = "TXSTREAM_TEST_BROKER"


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """URL of the broker for this session: $TXSTREAM_TEST_BROKER, else an embedded Tansu."""
    external = os.environ.get(BROKER_ENV)
    if external:
        parse_broker_url(external)  # fail at once, naming the variable's bad value
        yield external
        return
    # Never skip for want of a broker: the embedded one is always installable.
    broker = EmbeddedBroker()
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


def connection_to(broker_url: str) -> KafkaConnection:
    """How the test's clients reach ``broker_url``: with the TXSTREAM_KAFKA_* settings of
    the environment (an external broker may need TLS or SASL), PLAINTEXT by default."""
    return kafka_connection(Settings.load(broker=broker_url))


@pytest.fixture
def kafka(broker_url: str) -> KafkaConnection:
    """The session broker as the Kafka clients' connection."""
    return connection_to(broker_url)


@pytest.fixture
def unique_id() -> str:
    """A fresh short name per test, for app ids (consumer groups) and topic names."""
    # Tansu fixes a group's session timeout at creation and memory storage never
    # forgets a topic, so tests sharing a broker must never share names.
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TXSTREAM_* variable and no .env from the developer's shell leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("TXSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
