"""KafkaConnection: the brokers and how to reach them (TLS, SASL), for every Kafka client.

The one place that turns the ``TXSTREAM_KAFKA_*`` settings into client options: aiokafka
keyword arguments for every client txstream creates itself (admin, producers, consumers)
and Faust's ``broker_credentials`` for the worker's own clients. Secrets stay
``SecretStr`` until the moment a client is built.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT
from pydantic import SecretStr

from app.exceptions import BrokerError, SettingsError
from app.settings import Settings

__all__ = ["KafkaConnection", "kafka_connection", "parse_broker_url"]

# host:port where host is a name, an IPv4 address or a bracketed IPv6 address.
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_SCHEME = "kafka://"


def parse_broker_url(url: str) -> str:
    """Turn ``kafka://host:port[,host:port]`` (or bare ``host:port``) into a bootstrap string.

    Faust's own multi-broker form, ``kafka://a:9092;kafka://b:9092``, is accepted too.
    """
    parts = [p.strip() for p in re.split(r"[,;]", url.strip())]
    servers: list[str] = []
    for part in parts:
        if part[: len(_SCHEME)].lower() == _SCHEME:
            part = part[len(_SCHEME) :]
        part = part.rstrip("/")
        match = _HOST_PORT.match(part)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise BrokerError(f"invalid broker URL {url!r}: expected kafka://host:port[,host:port]")
        servers.append(part)
    return ",".join(servers)


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them; immutable, safe to print.

    ``str()`` of it is the bootstrap string, for messages. The password is a
    ``SecretStr`` and the TLS context is left out of the repr.
    """

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    #: How long to keep trying to reach the brokers at start (seconds).
    connect_timeout: float = 30.0
    #: The PEM files the TLS context was built from (librdkafka clients take paths).
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True

    @property
    def client_cert(self) -> bool:
        """Whether connections present a client certificate (mutual TLS)."""
        return self.cert_file is not None

    @classmethod
    def plain(cls, url: str, *, connect_timeout: float = 30.0) -> KafkaConnection:
        """A PLAINTEXT connection to ``kafka://host:port[,...]`` (or ``host:port``)."""
        return cls(parse_broker_url(url), connect_timeout=connect_timeout)

    def __str__(self) -> str:
        return self.bootstrap

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted (SSL or SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")

    def security_kwargs(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for this security (no bootstrap servers)."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = (
                None if self.password is None else self.password.get_secret_value())
        return kwargs

    def client_kwargs(self, **options: Any) -> dict[str, Any]:
        """Everything an aiokafka client needs to connect, plus ``options``."""
        return {"bootstrap_servers": self.bootstrap, **self.security_kwargs(), **options}

    def faust_credentials(self) -> CredentialsT | None:
        """Faust's ``broker_credentials`` for the same security (None: PLAINTEXT).

        Faust's SASL credentials with an SSL context are SASL_SSL, without one
        SASL_PLAINTEXT; its SSL credentials are SSL (``faust/auth.py``), and its aiokafka
        driver passes them to every consumer and producer it creates.
        """
        if self.uses_sasl:
            password = None if self.password is None else self.password.get_secret_value()
            return faust.SASLCredentials(
                username=self.username, password=password, mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context if self.uses_tls else None)
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context)
        return None

    def librdkafka_config(self) -> dict[str, str]:
        """The same connection as librdkafka properties (confluent-kafka, Quix Streams)."""
        config = {"bootstrap.servers": self.bootstrap,
                  "security.protocol": self.security_protocol.lower()}
        if self.uses_tls:
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.check_hostname else "none")
            for key, path in (("ssl.ca.location", self.ca_file),
                              ("ssl.certificate.location", self.cert_file),
                              ("ssl.key.location", self.key_file or self.cert_file)):
                if path is not None and (key != "ssl.key.location" or self.cert_file):
                    config[key] = str(path)
        if self.uses_sasl:
            config["sasl.mechanism"] = str(self.sasl_mechanism)
            config["sasl.username"] = str(self.username)
            config["sasl.password"] = (
                "" if self.password is None else self.password.get_secret_value())
        return config

    def describe(self) -> str:
        """What a person needs to know: ``SASL_SSL (SCRAM-SHA-512 as alice) to host:port``."""
        how = self.security_protocol
        if self.uses_sasl:
            how += f" ({self.sasl_mechanism} as {self.username})"
        return f"{how} to {self.bootstrap}"


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """The client TLS context, or SettingsError naming the variable whose file is wrong."""
    ca_file = settings.kafka_ca_file
    try:
        # aiokafka's helper: verification required, the system's CAs when no file is given.
        context: ssl.SSLContext = create_ssl_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise SettingsError(_file_error("kafka_ca_file", ca_file, "no CA certificate in it", exc)
                            ) from None
    context.check_hostname = settings.kafka_check_hostname
    cert, key = settings.kafka_cert_file, settings.kafka_key_file
    if cert is not None:
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except (ssl.SSLError, OSError, ValueError) as exc:
            variables = "TXSTREAM_KAFKA_CERT_FILE" + (" / TXSTREAM_KAFKA_KEY_FILE" if key else "")
            reason = getattr(exc, "reason", None) or str(exc)
            detail = ("the key does not belong to the certificate"
                      if reason == "KEY_VALUES_MISMATCH" else
                      f"not a PEM certificate and its private key ({reason})")
            raise SettingsError(f"{variables}: {detail}") from None
    return context


def _file_error(name: str, path: Path | None, what: str, exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return f"TXSTREAM_{name.upper()}={str(path)!r}: {what} ({reason})"


def kafka_connection(settings: Settings) -> KafkaConnection:
    """The connection the settings describe; SettingsError for a TLS file that does not load."""
    protocol = settings.kafka_security_protocol
    return KafkaConnection(
        bootstrap=parse_broker_url(settings.broker),
        security_protocol=protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_username,
        password=settings.kafka_password,
        ssl_context=_tls_context(settings) if protocol.endswith("SSL") else None,
        connect_timeout=settings.kafka_connect_timeout_ms / 1000,
        ca_file=settings.kafka_ca_file,
        cert_file=settings.kafka_cert_file,
        key_file=settings.kafka_key_file,
        check_hostname=settings.kafka_check_hostname,
    )
