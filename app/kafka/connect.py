"""Reaching the brokers: start a client, and when it cannot connect, say why in one line.

aiokafka reports a failed start as ``Unable to bootstrap from [...]`` (the cause is only in
its log), and a worker would either crash with a traceback or retry without end. Here a
failed start is retried with a direct connection to each bootstrap server (TCP, TLS
handshake, ApiVersions, SASL) whose exception is classified: a refused or unresolvable
address may pass (the brokers are starting), so it is retried until the connection's
``connect_timeout``; a TLS or authentication failure will not, so it ends at once.
Either way the result is one :class:`~app.exceptions.BrokerError` naming the problem and
the setting to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from app.exceptions import BrokerError

from .security import KafkaConnection

__all__ = ["Problem", "diagnose", "outage_error", "start_client", "stop_client",
           "wait_for_brokers"]

#: Pause between rounds of connection attempts while the brokers may still be starting.
_RETRY_INTERVAL = 1.0
#: Longest one attempt (connect, handshake, first answer) may take.
_ATTEMPT_TIMEOUT = 10.0
#: How long to wait for a TLS alert after a handshake (it follows at once when it comes).
_ALERT_WAIT = 2.0

_PROTOCOL = "TXSTREAM_KAFKA_SECURITY_PROTOCOL"
_CA_FILE = "TXSTREAM_KAFKA_CA_FILE"
_CLIENT_CERT = "TXSTREAM_KAFKA_CERT_FILE and TXSTREAM_KAFKA_KEY_FILE"


class _Client(Protocol):
    async def start(self) -> Any: ...


C = TypeVar("C", bound=_Client)


@dataclass(frozen=True)
class Problem:
    """Why one connection attempt failed, and whether trying again may help."""

    message: str
    retry: bool


def _ssl_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason (``CERTIFICATE_VERIFY_FAILED``) of an SSL error in ``exc``'s chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def diagnose(exc: BaseException, server: str, kafka: KafkaConnection) -> Problem:
    """What the failure of a connection to ``server`` means, in words a person can act on."""
    protocol = f"{_PROTOCOL}={kafka.security_protocol}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        if "mismatch" in detail:
            return Problem(f"the TLS certificate of {server} does not name that host "
                           f"({detail}): connect by a name the certificate has, or set "
                           f"TXSTREAM_KAFKA_CHECK_HOSTNAME=false", retry=False)
        return Problem(f"the TLS certificate of {server} is not trusted ({detail}): set "
                       f"{_CA_FILE} to the CA that signed the brokers' certificates",
                       retry=False)
    reason = _ssl_reason(exc)
    if reason is not None:
        if "CERTIFICATE_REQUIRED" in reason or (
                "HANDSHAKE_FAILURE" in reason and kafka.ssl_context is not None):
            what = ("requires a client certificate: set " + _CLIENT_CERT
                    if not kafka.client_cert else
                    "refused the TLS handshake (does it accept this client certificate?)")
            return Problem(f"{server} {what} ({reason})", retry=False)
        if reason in ("TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                      "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_ACCESS_DENIED"):
            return Problem(f"{server} did not accept the client certificate ({reason}): "
                           f"check {_CLIENT_CERT}", retry=False)
        if reason in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING",
                      "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return Problem(f"{server} does not speak TLS ({reason}): if its listener is "
                           f"plaintext, set {_PROTOCOL}=PLAINTEXT or SASL_PLAINTEXT",
                           retry=False)
        return Problem(f"the TLS handshake with {server} failed ({reason})", retry=False)
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return Problem(f"{server} does not offer SASL mechanism {kafka.sasl_mechanism} "
                       f"(TXSTREAM_KAFKA_SASL_MECHANISM): {exc}", retry=False)
    if isinstance(exc, (kafka_errors.SaslAuthenticationFailed,
                        kafka_errors.AuthenticationFailedError,
                        kafka_errors.IllegalSaslStateError)) or (
            kafka.uses_sasl and isinstance(exc, (KeyError, ValueError))):
        # aiokafka's SCRAM client ends in KeyError/ValueError when the server's final
        # message is an error instead of its signature: a failed login too.
        return Problem(f"SASL authentication to {server} as {kafka.username!r} "
                       f"({kafka.sasl_mechanism}) failed: wrong password or unknown user "
                       f"(TXSTREAM_KAFKA_USERNAME, TXSTREAM_KAFKA_PASSWORD)", retry=False)
    if isinstance(exc, kafka_errors.KafkaConnectionError) and "closed" in str(exc):
        # A Kafka broker does not hang up on ApiVersions: it expected another protocol.
        if kafka.uses_tls:
            hint = (f"it may require a client certificate ({_CLIENT_CERT}) or SASL "
                    f"({_PROTOCOL}=SASL_SSL)")
        else:
            hint = f"if its listener uses TLS, set {_PROTOCOL}=SSL (or SASL_SSL)"
        return Problem(f"{server} closed the connection before answering ({protocol}): "
                       f"{hint}", retry=False)
    if isinstance(exc, socket.gaierror):
        return Problem(f"cannot resolve {server}: {exc.strerror or exc}", retry=True)
    if isinstance(exc, ConnectionRefusedError) or (
            isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return Problem(f"{server} refused the connection (is the broker running?)", retry=True)
    if isinstance(exc, TimeoutError):
        return Problem(f"{server} did not answer within {_attempt_timeout(kafka):g} s "
                       f"(with {protocol}; is it a Kafka listener of that kind?)", retry=True)
    if isinstance(exc, OSError):
        return Problem(f"cannot connect to {server}: {exc.strerror or exc}", retry=True)
    return Problem(f"cannot connect to {server}: {exc!r}", retry=True)


def _attempt_timeout(kafka: KafkaConnection) -> float:
    return max(1.0, min(_ATTEMPT_TIMEOUT, kafka.connect_timeout))


async def _try_server(kafka: KafkaConnection, server: str, *,
                      advertised: bool = False) -> list[str]:
    """Connect to one server as a client would (TCP, TLS, ApiVersions, SASL), then hang up.

    Returns the ``host:port`` of every broker the server advertises (when asked for).
    """
    host, _, port = server.rpartition(":")
    timeout = _attempt_timeout(kafka)
    try:
        async with asyncio.timeout(timeout):
            conn = await create_conn(host.strip("[]"), int(port), client_id="txstream-check",
                                     request_timeout_ms=int(timeout * 1000),
                                     **kafka.security_kwargs())
    except kafka_errors.KafkaConnectionError as exc:
        alert = await _tls_alert(kafka, host.strip("[]"), int(port)) if kafka.uses_tls else None
        if alert is not None:
            raise alert from exc
        raise
    try:
        if not advertised:
            return []
        async with asyncio.timeout(timeout):
            metadata = await conn.send(MetadataRequest([]))
        return [_server(broker[1], broker[2]) for broker in metadata.brokers]
    finally:
        conn.close()


def _server(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _try_advertised(kafka: KafkaConnection, bootstrap: str,
                          advertised: list[str]) -> Problem | None:
    """None if a client can reach some broker at the address the cluster advertises.

    Clients bootstrap once, then connect to the addresses in the metadata; a broker that
    advertises an address clients cannot reach (a container's own name, a port only open
    inside) makes aiokafka retry those connections without end.
    """
    if not advertised or bootstrap in advertised:
        return None
    problems: list[str] = []
    for server in advertised:
        try:
            await _try_server(kafka, server)
            return None
        except Exception as exc:  # classified like any connection failure
            problems.append(diagnose(exc, server, kafka).message)
    return Problem(f"{bootstrap} answers, but the brokers advertise {', '.join(advertised)}, "
                   f"which this client cannot reach ({'; '.join(problems)}): check the "
                   f"brokers' advertised listeners", retry=True)


async def _tls_alert(kafka: KafkaConnection, host: str, port: int) -> ssl.SSLError | None:
    """The TLS alert a server sends right after the handshake, if any.

    With TLS 1.3 a server checks the client's certificate after the client has finished
    its handshake, so a missing or unknown client certificate reaches aiokafka only as
    a closed connection; reading from a fresh connection shows the alert itself.
    """
    try:
        async with asyncio.timeout(_ALERT_WAIT):
            reader, writer = await asyncio.open_connection(host, port, ssl=kafka.ssl_context)
            try:
                await reader.read(1)
            finally:
                writer.close()
    except ssl.SSLError as exc:
        return exc
    except (OSError, TimeoutError):
        return None
    return None


async def wait_for_brokers(kafka: KafkaConnection) -> None:
    """Return once a bootstrap server accepts a client; BrokerError with the reason if not.

    Failures that may pass (refused, unresolvable, no answer) are retried until
    ``kafka.connect_timeout`` seconds have passed; TLS and SASL failures end it at once.
    """
    deadline = time.monotonic() + kafka.connect_timeout
    while True:
        problems: list[Problem] = []
        for server in kafka.bootstrap.split(","):
            try:
                advertised = await _try_server(kafka, server, advertised=True)
            except Exception as exc:  # every failure is classified, none is a crash
                problem = diagnose(exc, server, kafka)
                if not problem.retry:
                    raise BrokerError(f"cannot connect to Kafka: {problem.message}") from None
                problems.append(problem)
                continue
            unreachable = await _try_advertised(kafka, server, advertised)
            if unreachable is None:
                return
            problems.append(unreachable)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reasons = "; ".join(problem.message for problem in problems)
            raise BrokerError(f"cannot reach Kafka at {kafka.bootstrap} within "
                              f"{kafka.connect_timeout:g} s (TXSTREAM_KAFKA_CONNECT_TIMEOUT): "
                              f"{reasons}")
        await asyncio.sleep(min(_RETRY_INTERVAL, remaining))


async def start_client(make: Callable[[], C], kafka: KafkaConnection) -> C:
    """A started aiokafka client from ``make()``; BrokerError with the reason if it cannot start.

    The happy path costs nothing extra. A failed start is followed by
    :func:`wait_for_brokers`, which raises with the reason or returns once the brokers
    answer, and then by a fresh client (a failed one cannot be started again).
    """
    client = make()
    try:
        await client.start()
        return client
    except (kafka_errors.KafkaError, OSError, TimeoutError):
        with contextlib.suppress(Exception):
            await stop_client(client)
    await wait_for_brokers(kafka)
    client = make()
    await client.start()
    return client


async def stop_client(client: Any) -> None:
    """Stop an aiokafka client (consumers and producers ``stop``, the admin client ``close``)."""
    stop = getattr(client, "stop", None) or client.close
    await stop()


def outage_error(kafka: KafkaConnection, error: BaseException | str | None) -> BrokerError:
    """A broker that stopped answering, for longer than a command waits for it."""
    cause = f" (last error: {error})" if error else ""
    return BrokerError(
        f"the broker at {kafka.bootstrap} did not answer for {kafka.connect_timeout:g} s "
        f"(TXSTREAM_KAFKA_CONNECT_TIMEOUT){cause}")
