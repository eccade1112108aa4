"""Unit tests for app.kafka.connect: what a failed connection means, and how long it is tried."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest
from aiokafka import errors as kafka_errors

from app.exceptions import BrokerError
from app.kafka.connect import diagnose, wait_for_brokers
from app.kafka.security import KafkaConnection
from app.testing import free_port

SERVER = "broker:9093"
PLAIN = KafkaConnection("broker:9093")
TLS = KafkaConnection("broker:9093", security_protocol="SSL",
                      ssl_context=ssl.create_default_context())
SASL = KafkaConnection("broker:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
                       username="alice", ssl_context=ssl.create_default_context())


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason
    return error


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = message
    return error


@pytest.mark.parametrize(("exc", "kafka", "expected", "retry"), [
    (_verify_error("unable to get local issuer certificate"), TLS,
     "the TLS certificate of broker:9093 is not trusted (unable to get local issuer "
     "certificate): set TXSTREAM_KAFKA_CA_FILE to the CA that signed the brokers' certificates",
     False),
    (_verify_error("IP address mismatch, certificate is not valid for '10.0.0.1'."), TLS,
     "the TLS certificate of broker:9093 does not name that host (IP address mismatch, "
     "certificate is not valid for '10.0.0.1'.): connect by a name the certificate has, or "
     "set TXSTREAM_KAFKA_CHECK_HOSTNAME=false", False),
    (_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"), TLS,
     "broker:9093 requires a client certificate: set TXSTREAM_KAFKA_CERT_FILE and "
     "TXSTREAM_KAFKA_KEY_FILE (TLSV13_ALERT_CERTIFICATE_REQUIRED)", False),
    (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), TLS,
     "broker:9093 did not accept the client certificate (TLSV1_ALERT_UNKNOWN_CA): check "
     "TXSTREAM_KAFKA_CERT_FILE and TXSTREAM_KAFKA_KEY_FILE", False),
    (_ssl_error("WRONG_VERSION_NUMBER"), TLS,
     "broker:9093 does not speak TLS (WRONG_VERSION_NUMBER): if its listener is plaintext, "
     "set TXSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT or SASL_PLAINTEXT", False),
    (kafka_errors.SaslAuthenticationFailed("Authentication failed"), SASL,
     "SASL authentication to broker:9093 as 'alice' (SCRAM-SHA-256) failed: wrong password or "
     "unknown user (TXSTREAM_KAFKA_USERNAME, TXSTREAM_KAFKA_PASSWORD)", False),
    (KeyError("v"), SASL,
     "SASL authentication to broker:9093 as 'alice' (SCRAM-SHA-256) failed: wrong password or "
     "unknown user (TXSTREAM_KAFKA_USERNAME, TXSTREAM_KAFKA_PASSWORD)", False),
    (kafka_errors.UnsupportedSaslMechanismError("enabled: ['PLAIN']"), SASL,
     "broker:9093 does not offer SASL mechanism SCRAM-SHA-256 (TXSTREAM_KAFKA_SASL_MECHANISM):"
     " [Error 33] UnsupportedSaslMechanismError: enabled: ['PLAIN']", False),
    (kafka_errors.KafkaConnectionError("Connection at broker:9093 closed"), PLAIN,
     "broker:9093 closed the connection before answering (TXSTREAM_KAFKA_SECURITY_PROTOCOL="
     "PLAINTEXT): if its listener uses TLS, set TXSTREAM_KAFKA_SECURITY_PROTOCOL=SSL (or "
     "SASL_SSL)", False),
    (ConnectionRefusedError(111, "Connect call failed"), PLAIN,
     "broker:9093 refused the connection (is the broker running?)", True),
    (socket.gaierror(-2, "Name or service not known"), PLAIN,
     "cannot resolve broker:9093: Name or service not known", True),
    (TimeoutError(), PLAIN,
     "broker:9093 did not answer within 10 s (with TXSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT; "
     "is it a Kafka listener of that kind?)", True),
])
def test_diagnose(exc: BaseException, kafka: KafkaConnection, expected: str,
                  retry: bool) -> None:
    problem = diagnose(exc, SERVER, kafka)
    assert (problem.message, problem.retry) == (expected, retry)


async def test_refused_is_retried_until_the_connect_timeout() -> None:
    port = free_port()  # nothing listens there
    kafka = KafkaConnection(f"127.0.0.1:{port}", connect_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        await wait_for_brokers(kafka)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 5
    assert str(info.value) == (
        f"cannot reach Kafka at 127.0.0.1:{port} within 1.5 s (TXSTREAM_KAFKA_CONNECT_TIMEOUT): "
        f"127.0.0.1:{port} refused the connection (is the broker running?)")


async def test_a_server_that_hangs_up_ends_it_at_once() -> None:
    # What a TLS listener does to a plaintext client: reads its request, closes.
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        kafka = KafkaConnection(f"127.0.0.1:{port}", connect_timeout=30)
        started = time.monotonic()
        with pytest.raises(BrokerError, match="closed the connection before answering"):
            await wait_for_brokers(kafka)
        assert time.monotonic() - started < 5
    finally:
        server.close()
        await server.wait_closed()
