"""The one Settings object: TXSTREAM_* environment variables, validated at start."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from tables.windows import WindowConfig

from .durations import format_duration, parse_duration
from .exceptions import SettingsError

__all__ = ["CODEC_NAMES", "ENV_PREFIX", "OUTPUT_MODES", "SECRET_SETTINGS", "Settings",
           "window_config"]

ENV_PREFIX = "TXSTREAM_"

_DURATION_HINT = "write 500ms, 30s, 5m or 1h; compounds like 1h30m work too"
_HOST_PORT = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})"
)
_APP_ID = re.compile(r"[A-Za-z0-9._-]+")
_MONEY = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
#: Bind addresses that mean "every interface": no peer can reach a worker by them.
_ALL_INTERFACES = ("0.0.0.0", "::", "[::]")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: A bearer token: visible ASCII without spaces (it travels in a header), long enough
#: not to be guessed.
_TOKEN = re.compile(r"[!-~]{16,}")
#: Settings whose value is a secret: never echoed, not even in an error about it.
SECRET_SETTINGS = frozenset({"kafka_password", "web_token", "metrics_token"})
#: Each secret and the variable naming a file that may hold it instead (Docker secrets).
_SECRET_FILES = {
    "kafka_password": "kafka_password_file",
    "web_token": "web_token_file",
    "metrics_token": "metrics_token_file",
}
#: Optional settings for which an empty variable means "not set" (compose files write
#: ``TXSTREAM_KAFKA_USERNAME: ""`` to leave one out).
_OPTIONAL_TEXT = frozenset({
    "kafka_sasl_mechanism", "kafka_username", "kafka_password", "kafka_password_file",
    "kafka_ca_file", "kafka_cert_file", "kafka_key_file", "web_token", "web_token_file",
    "metrics_token", "metrics_token_file", "web_cert_file", "web_key_file", "web_ca_file",
})
#: Longest repr of a bad value an error message shows.
_SHOWN_CHARS = 100
#: Files read at start: each must exist and be readable.
_FILE_SETTINGS = (
    "kafka_password_file", "kafka_ca_file", "kafka_cert_file", "kafka_key_file",
    "web_token_file", "metrics_token_file", "web_cert_file", "web_key_file", "web_ca_file",
)
#: Where a worker sends its output records (TXSTREAM_OUTPUTS).
OUTPUT_MODES = ("live", "none", "versioned")

#: TXSTREAM_COMPRESSION's choices, as Kafka's ``compression.type`` names them.
CODEC_NAMES = ("none", "gzip", "snappy", "lz4", "zstd")

# What each field expects, for errors pydantic raises itself (wrong type, out of range):
# its own wording ("Input should be greater than or equal to 1") names no variable.
_EXPECTED: dict[str, str] = {
    "broker": "kafka://host:port[,host:port...]",
    "app_id": "letters, digits, '.', '_' or '-'",
    "web_host": "a host name or IP address",
    "web_advertised_host": "a host name or IP address other workers can reach",
    "web_port": "an integer port 1..65535",
    "datadir": "a directory path",
    "partitions": "an integer >= 1",
    "tumbling": f"a duration ({_DURATION_HINT})",
    "hopping": "size/step durations, e.g. 10m/2m",
    "sliding": f"a duration ({_DURATION_HINT})",
    "session_gap": f"a duration ({_DURATION_HINT})",
    "allowed_lateness": f"a duration ({_DURATION_HINT})",
    "idle_timeout": f"a duration ({_DURATION_HINT})",
    "retention": f"a duration ({_DURATION_HINT})",
    "alert_threshold": "a positive amount in PLN with at most 2 decimals, e.g. 5000 or 4999.99",
    "flush_interval": f"a duration ({_DURATION_HINT})",
    "checkpoint_interval": f"a duration ({_DURATION_HINT}), 0s for every flush",
    "standby_replicas": "an integer >= 0",
    "session_timeout": f"a duration ({_DURATION_HINT})",
    "embedded_broker": "true or false",
    "state_version": "an integer >= 1",
    "log_level": "one of debug, info, warning, error",
    "topic_prefix": "letters, digits, '.', '_' or '-' (or nothing)",
    "fetch_max_wait": f"a duration ({_DURATION_HINT})",
    "max_event_ahead": f"a duration ({_DURATION_HINT})",
    "window_kinds": "a comma-separated list of tumbling, hopping, sliding, session "
    "(tumbling is required)",
    "kafka_security_protocol": "one of " + ", ".join(_SECURITY_PROTOCOLS),
    "kafka_sasl_mechanism": "one of " + ", ".join(_SASL_MECHANISMS),
    "kafka_username": "a user name",
    "kafka_password": "a password",
    "kafka_check_hostname": "true or false",
    "kafka_connect_timeout": f"a duration ({_DURATION_HINT})",
    "web_token": "a token",
    "metrics_token": "a token",
    **{name: "a path to a readable file" for name in _FILE_SETTINGS},
    "duplicate_horizon": f"a duration ({_DURATION_HINT}), or nothing for TXSTREAM_RETENTION",
    "outputs": "one of live, none, versioned",
    "compression": "one of " + ", ".join(CODEC_NAMES),
}


def _secret_problem(field: str, value: str) -> str | None:
    """What is wrong with a secret's value (without showing it), or None."""
    if field == "kafka_password":
        return None if value else "must not be empty"
    if _TOKEN.fullmatch(value) is None:
        return "must be at least 16 visible ASCII characters without spaces"
    return None


def _variable(field: str) -> str:
    """The environment variable of a field: ``kafka_ca_file`` -> ``TXSTREAM_KAFKA_CA_FILE``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _read_secret_file(field: str, path: str) -> str:
    """The secret in a ``*_FILE`` (one trailing newline dropped), or ValueError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        msg = f"{_variable(field)}={path!r}: cannot read the file: {reason}"
        raise ValueError(msg) from None
    return text.removesuffix("\n").removesuffix("\r")


def _one_of(value: Any, choices: tuple[str, ...]) -> Any:
    """``value`` stripped and in lower case if it is one of ``choices``, else ValueError.

    Validators call this before pydantic's Literal check, so the error shows the value as
    written ("LOUD"), and any case is accepted.
    """
    choice = value.strip().lower() if isinstance(value, str) else value
    if choice not in choices:
        msg = f"expected one of {', '.join(choices)}"
        raise ValueError(msg)
    return choice


def _duration(text: str, *, positive: bool) -> int:
    """Parse a duration setting; ValueError with a message fit for a SettingsError."""
    try:
        ms = parse_duration(text)
    except ValueError:
        msg = f"not a duration ({_DURATION_HINT})"
        raise ValueError(msg) from None
    if positive and ms == 0:
        msg = "must be greater than zero"
        raise ValueError(msg)
    return ms


def _hopping(text: str) -> tuple[int, int]:
    """(size_ms, step_ms) of ``size/step``."""
    size_text, slash, step_text = text.partition("/")
    if not slash:
        msg = "expected size/step durations, e.g. 10m/2m"
        raise ValueError(msg)
    size = _duration(size_text, positive=True)
    step = _duration(step_text, positive=True)
    if size % step:
        msg = "the size must be a positive multiple of the step, e.g. 10m/2m"
        raise ValueError(msg)
    return size, step


class Settings(BaseSettings):
    """Every setting, from ``TXSTREAM_*`` environment variables or a ``.env`` file.

    Variables (default in brackets); durations are written ``500ms``, ``30s``, ``5m``, ``1h``:

    - ``TXSTREAM_BROKER`` [kafka://localhost:9092]: Kafka bootstrap URL,
      ``kafka://host:port[,host:port...]``.
    - ``TXSTREAM_APP_ID`` [txstream]: Faust app id (consumer group, topic prefix);
      letters, digits, ``.``, ``_``, ``-``.
    - ``TXSTREAM_WEB_HOST`` [127.0.0.1] / ``TXSTREAM_WEB_PORT`` [6066]: web views.
    - ``TXSTREAM_WEB_ADVERTISED_HOST`` [the web host, or the machine's host name when that is
      0.0.0.0]: the host other workers reach this worker's views at.
    - ``TXSTREAM_DATADIR`` [./data]: RocksDB state directory.
    - ``TXSTREAM_PARTITIONS`` [4]: partitions of every topic txstream creates (>= 1).
    - ``TXSTREAM_TUMBLING`` [5m]: tumbling window size.
    - ``TXSTREAM_HOPPING`` [10m/2m]: hopping window size/step; size a multiple of step.
    - ``TXSTREAM_SLIDING`` [10m]: sliding window size.
    - ``TXSTREAM_SESSION_GAP`` [15m]: session inactivity gap.
    - ``TXSTREAM_ALLOWED_LATENESS`` [5s]: watermark delay behind the highest event time
      (may be 0).
    - ``TXSTREAM_IDLE_TIMEOUT`` [30s]: after this long without input (wall clock) a
      partition's watermark follows the wall clock.
    - ``TXSTREAM_RETENTION`` [2h]: how long closed windows stay in the tables (event time);
      at least the largest window (tumbling, hopping size, sliding, session gap).
    - ``TXSTREAM_ALERT_THRESHOLD`` [5000]: PLN per tumbling window per customer; a positive
      amount with at most 2 decimals.
    - ``TXSTREAM_FLUSH_INTERVAL`` [5s]: how often in-memory state is written to the tables
      and source offsets are committed (Quix Streams commits every 5 s by default too).
    - ``TXSTREAM_CHECKPOINT_INTERVAL`` [30s]: how often the flushed state is also written
      to the local RocksDB tables (the changelogs get it at every flush); after a kill, a
      restart replays up to this long's changelog records. 0s writes at every flush.
    - ``TXSTREAM_FLUSH_WHEN_QUIET`` [true]: also flush as soon as the input pauses, so a
      caught-up worker's state and offsets are written at once.
    - ``TXSTREAM_STANDBY_REPLICAS`` [1]: standby copies of each table partition (>= 0).
    - ``TXSTREAM_SESSION_TIMEOUT`` [10s]: consumer group session timeout (the embedded
      broker holds group joins for half of it).
    - ``TXSTREAM_EMBEDDED_BROKER`` [false]: true when the broker is the embedded Tansu, so
      the worker applies its workarounds.
    - ``TXSTREAM_STATE_VERSION`` [1]: state generation (>= 1); Kappa replay bumps it.
    - ``TXSTREAM_LOG_LEVEL`` [info]: debug, info, warning or error.
    - ``TXSTREAM_FETCH_MAX_WAIT`` [100ms]: longest a fetch waits for records (Faust's own
      default, 1.5 s, delays alerts on a quiet stream).
    - ``TXSTREAM_WINDOW_KINDS`` [tumbling,hopping,sliding,session]: the window kinds kept
      (tumbling is required: it carries the alert rule).
    - ``TXSTREAM_MAX_EVENT_AHEAD`` [5m]: how far ahead of the wall clock an event time may
      be; a record beyond it is dead-lettered and never moves a watermark (0 allowed).
    - ``TXSTREAM_TOPIC_PREFIX`` [empty]: put before every input and output topic name
      (``test1-transactions``), so tests and tenants can share a broker; letters,
      digits, ``.``, ``_``, ``-``.
    - ``TXSTREAM_DUPLICATE_HORIZON`` [empty: the retention]: how long (event time) an
      applied tx_id is remembered, so that the same tx_id again is skipped as a duplicate
      (or dead-lettered if its content differs); at least the largest window.
    - ``TXSTREAM_OUTPUTS`` [live]: where the worker sends alerts, window results,
      sessions, late events and dead letters: ``live`` (the topics), ``versioned``
      (the same names with ``-v{TXSTREAM_STATE_VERSION}`` appended) or ``none`` (state
      only; ``txstream replay`` sets it for its worker).
    - ``TXSTREAM_COMPRESSION`` [zstd]: how the worker compresses the record batches it
      produces (outputs and changelogs): none, gzip, snappy, lz4 or zstd. Consumers of the
      output topics need a client that reads it (every Kafka client since 2.1 reads zstd).

    Kafka security (every command that talks to Kafka), named as Kafka clients name them:

    - ``TXSTREAM_KAFKA_SECURITY_PROTOCOL`` [PLAINTEXT]: PLAINTEXT, SSL, SASL_PLAINTEXT or
      SASL_SSL.
    - ``TXSTREAM_KAFKA_SASL_MECHANISM`` [none]: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512;
      required with a SASL protocol.
    - ``TXSTREAM_KAFKA_USERNAME`` / ``TXSTREAM_KAFKA_PASSWORD`` [none]: SASL credentials;
      ``TXSTREAM_KAFKA_PASSWORD_FILE`` reads the password from a file instead (Docker or
      Kubernetes secrets; one trailing newline is dropped). Set one of the two, not both.
    - ``TXSTREAM_KAFKA_CA_FILE`` [system CAs]: PEM file of the CA(s) that signed the
      brokers' certificates.
    - ``TXSTREAM_KAFKA_CERT_FILE`` / ``TXSTREAM_KAFKA_KEY_FILE`` [none]: client certificate
      and its key (PEM) for mutual TLS; the key may be in the certificate file.
    - ``TXSTREAM_KAFKA_CHECK_HOSTNAME`` [true]: check that a broker's certificate names the
      host connected to.
    - ``TXSTREAM_KAFKA_CONNECT_TIMEOUT`` [30s]: how long a command keeps trying to reach the
      brokers at start before it stops with the reason (a TLS or authentication failure
      stops it at once); also how long ``produce`` and ``alerts`` wait out a broker that
      stops answering while they run.

    Web views:

    - ``TXSTREAM_WEB_TOKEN`` / ``TXSTREAM_WEB_TOKEN_FILE`` [none]: when set, every view but
      the probes (and ``/metrics``) needs ``Authorization: Bearer <token>`` or a session
      from the login page; at least 16 visible ASCII characters.
    - ``TXSTREAM_METRICS_TOKEN`` / ``TXSTREAM_METRICS_TOKEN_FILE`` [none]: when set,
      ``/metrics`` needs this token; otherwise it is open.
    - ``TXSTREAM_WEB_CERT_FILE`` / ``TXSTREAM_WEB_KEY_FILE`` [none]: serve HTTPS with this
      certificate and key (PEM).
    - ``TXSTREAM_WEB_CA_FILE`` [system CAs]: CA that signed the other workers' web
      certificates, for requests between workers over HTTPS.

    Secrets are ``SecretStr``: they never appear in a repr, a log line or an error.

    Build it with :meth:`load`, which turns validation errors into a
    :class:`~app.exceptions.SettingsError` naming the variable.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        # Other TXSTREAM_* variables exist (TXSTREAM_TEST_BROKER for the test suite), and a
        # .env file may hold them: they are not settings of the service, so not an error.
        extra="ignore",
    )

    broker: str = "kafka://localhost:9092"
    app_id: str = "txstream"
    web_host: str = "127.0.0.1"
    web_advertised_host: str | None = None
    web_port: int = Field(default=6066, ge=1, le=65535)
    datadir: Path = Path("./data")
    partitions: int = Field(default=4, ge=1)
    tumbling: str = "5m"
    hopping: str = "10m/2m"
    sliding: str = "10m"
    session_gap: str = "15m"
    allowed_lateness: str = "5s"
    idle_timeout: str = "30s"
    retention: str = "2h"
    alert_threshold: str = "5000"
    flush_interval: str = "5s"
    checkpoint_interval: str = "30s"
    flush_when_quiet: bool = True
    standby_replicas: int = Field(default=1, ge=0)
    session_timeout: str = "10s"
    embedded_broker: bool = False
    state_version: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    topic_prefix: str = ""
    window_kinds: str = "tumbling,hopping,sliding,session"
    fetch_max_wait: str = "100ms"
    max_event_ahead: str = "5m"

    # Kafka security. A *_FILE is read at start into the value it stands for, so
    # kafka_password (web_token, metrics_token) holds the secret whichever way it came.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_password_file: Path | None = None
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    kafka_check_hostname: bool = True
    kafka_connect_timeout: str = "30s"

    # Web views.
    web_token: SecretStr | None = None
    web_token_file: Path | None = None
    metrics_token: SecretStr | None = None
    metrics_token_file: Path | None = None
    web_cert_file: Path | None = None
    web_key_file: Path | None = None
    web_ca_file: Path | None = None

    # Duplicates and where outputs go.
    duplicate_horizon: str = ""
    outputs: Literal["live", "none", "versioned"] = "live"
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "zstd"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment and ``.env`` (overrides win), or raise SettingsError."""
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            msg = f"unknown setting(s): {', '.join(unknown)}"
            raise SettingsError(msg)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            # from None: the pydantic chain repeats the same facts as noise.
            raise SettingsError(_describe(exc)) from None

    # -- validation -------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        # Before the fields: a secret read from its *_FILE is then validated (and hidden)
        # exactly like one given directly.
        if not isinstance(data, dict):
            return data
        data = {key: (None if value == "" and key in _OPTIONAL_TEXT else value)
                for key, value in data.items()}
        for secret, file_field in _SECRET_FILES.items():
            path = data.get(file_field)
            if path is None:
                continue
            if data.get(secret) is not None:
                msg = (f"set {_variable(secret)} or {_variable(file_field)}, not both")
                raise ValueError(msg)
            value = _read_secret_file(file_field, str(path))
            problem = _secret_problem(secret, value)
            if problem:
                msg = f"{_variable(file_field)}={str(path)!r}: the secret in it {problem}"
                raise ValueError(msg)
            data[secret] = value
        return data

    @field_validator(*_FILE_SETTINGS)
    @classmethod
    def _check_readable_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            with value.open("rb") as file:
                file.read(1)
        except OSError as exc:
            msg = f"cannot read the file: {exc.strerror or exc}"
            raise ValueError(msg) from None
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        # Kafka clients spell these in capitals; accept any case, as for the log level.
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_username")
    @classmethod
    def _check_username(cls, value: str | None) -> str | None:
        if value is not None and (not value or value != value.strip()):
            msg = "expected a user name without leading or trailing spaces"
            raise ValueError(msg)
        return value

    @field_validator(*SECRET_SETTINGS)
    @classmethod
    def _check_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        problem = None if value is None else _secret_problem(
            str(info.field_name), value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        setting = f"{_variable('kafka_security_protocol')}={protocol}"
        sasl: dict[str, object] = {"kafka_sasl_mechanism": self.kafka_sasl_mechanism,
                "kafka_username": self.kafka_username,
                "kafka_password": self.kafka_password}
        tls: dict[str, object] = {"kafka_ca_file": self.kafka_ca_file,
                                  "kafka_cert_file": self.kafka_cert_file,
                                  "kafka_key_file": self.kafka_key_file}
        if protocol.startswith("SASL_"):
            missing = [_variable(name) for name, value in sasl.items() if value is None]
            if missing:
                needs = ", ".join(missing)
                if self.kafka_password is None:
                    needs += f" (or {_variable('kafka_password_file')})"
                msg = f"{setting} needs {needs}"
                raise ValueError(msg)
        else:
            if self.kafka_password_file is not None:
                sasl["kafka_password_file"] = sasl.pop("kafka_password")
            unused = [_variable(name) for name, value in sasl.items() if value is not None]
            if unused:
                msg = (f"{', '.join(unused)} set, but {setting} does not use SASL "
                       f"(use SASL_SSL or SASL_PLAINTEXT)")
                raise ValueError(msg)
        if not protocol.endswith("SSL"):
            unused = [_variable(name) for name, value in tls.items() if value is not None]
            if unused:
                msg = (f"{', '.join(unused)} set, but {setting} does not use TLS "
                       f"(use SSL or SASL_SSL)")
                raise ValueError(msg)
        if self.kafka_key_file is not None and self.kafka_cert_file is None:
            msg = (f"{_variable('kafka_key_file')} needs {_variable('kafka_cert_file')} "
                   f"(the client certificate it belongs to)")
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _check_web_tls(self) -> Settings:
        if (self.web_cert_file is None) != (self.web_key_file is None):
            msg = (f"set both {_variable('web_cert_file')} and {_variable('web_key_file')} "
                   f"to serve HTTPS, or neither")
            raise ValueError(msg)
        if self.web_ca_file is not None and self.web_cert_file is None:
            msg = (f"{_variable('web_ca_file')} set, but the web server has no TLS "
                   f"({_variable('web_cert_file')}, {_variable('web_key_file')})")
            raise ValueError(msg)
        return self

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        ok = bool(sep) and scheme == "kafka" and bool(rest)
        for server in rest.split(",") if ok else ():
            # Faust and aiokafka accept a repeated scheme on later servers too.
            match = _HOST_PORT.fullmatch(server.strip().removeprefix("kafka://"))
            if match is None or not 1 <= int(match.group(1)) <= 65535:
                ok = False
        if not ok:
            msg = "expected kafka://host:port[,host:port...]"
            raise ValueError(msg)
        return value

    @field_validator("app_id")
    @classmethod
    def _check_app_id(cls, value: str) -> str:
        if _APP_ID.fullmatch(value) is None:
            msg = "use only letters, digits, '.', '_' and '-'"
            raise ValueError(msg)
        return value

    @field_validator("window_kinds")
    @classmethod
    def _check_window_kinds(cls, value: str) -> str:
        kinds = [k.strip() for k in value.split(",") if k.strip()]
        allowed = ("tumbling", "hopping", "sliding", "session")
        if not kinds or any(k not in allowed for k in kinds) or "tumbling" not in kinds:
            msg = "not a list of window kinds"
            raise ValueError(msg)
        return ",".join(k for k in allowed if k in kinds)

    @property
    def window_kind_list(self) -> tuple[str, ...]:
        """The window kinds this worker keeps, in table order."""
        return tuple(self.window_kinds.split(","))

    @field_validator("topic_prefix")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        # Kafka's own rule for topic names; the prefix is part of every name.
        if value and _APP_ID.fullmatch(value) is None:
            msg = "use only letters, digits, '.', '_' and '-' (or nothing)"
            raise ValueError(msg)
        return value

    @field_validator("web_advertised_host", mode="before")
    @classmethod
    def _check_advertised_host(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
        if value is not None and (any(char.isspace() for char in value)
                                  or value in _ALL_INTERFACES):
            msg = "expected a host name or IP address other workers can reach"
            raise ValueError(msg)
        return value

    @property
    def web_public_host(self) -> str:
        """The host other workers reach this worker's views at (routing, fan-out).

        ``TXSTREAM_WEB_ADVERTISED_HOST``, else ``TXSTREAM_WEB_HOST``; a worker bound to
        every interface (0.0.0.0 in a container) is reached by the machine's host name:
        Faust would otherwise tell the others to send requests to 0.0.0.0, i.e. to
        themselves.
        """
        if self.web_advertised_host:
            return self.web_advertised_host
        if self.web_host in _ALL_INTERFACES:
            return socket.gethostname()
        return self.web_host

    @field_validator("web_host")
    @classmethod
    def _check_web_host(cls, value: str) -> str:
        if not value or any(char.isspace() for char in value):
            msg = "expected a host name or IP address"
            raise ValueError(msg)
        return value

    @field_validator(
        "tumbling",
        "sliding",
        "session_gap",
        "idle_timeout",
        "retention",
        "flush_interval",
        "session_timeout",
        "fetch_max_wait",
        "kafka_connect_timeout",
    )
    @classmethod
    def _check_positive_duration(cls, value: str) -> str:
        _duration(value, positive=True)
        return value.strip()

    @field_validator("allowed_lateness", "max_event_ahead", "checkpoint_interval")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        _duration(value, positive=False)
        return value.strip()

    @field_validator("duplicate_horizon")
    @classmethod
    def _check_optional_duration(cls, value: str) -> str:
        value = value.strip()
        if value:
            _duration(value, positive=True)
        return value

    @field_validator("outputs", mode="before")
    @classmethod
    def _check_outputs(cls, value: Any) -> Any:
        return _one_of(value, OUTPUT_MODES)

    @field_validator("compression", mode="before")
    @classmethod
    def _check_compression(cls, value: Any) -> Any:
        return _one_of(value, CODEC_NAMES)

    @field_validator("hopping")
    @classmethod
    def _check_hopping(cls, value: str) -> str:
        _hopping(value)
        return value.strip()

    @field_validator("alert_threshold")
    @classmethod
    def _check_threshold(cls, value: str) -> str:
        value = value.strip()
        if _MONEY.fullmatch(value) is None or not _money_cents(value):
            msg = "expected a positive amount in PLN with at most 2 decimals, e.g. 5000 or 4999.99"
            raise ValueError(msg)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: Any) -> Any:
        return _one_of(value, _LOG_LEVELS)

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        windows = {
            "TUMBLING": self.tumbling_ms,
            "HOPPING size": self.hopping_size_ms,
            "SLIDING": self.sliding_ms,
            "SESSION_GAP": self.session_gap_ms,
        }
        name, largest = max(windows.items(), key=lambda item: item[1])
        if self.retention_ms < largest:
            msg = (
                f"{ENV_PREFIX}RETENTION={self.retention!r}: must be at least the largest window, "
                f"{ENV_PREFIX}{name} {format_duration(largest)}"
            )
            raise ValueError(msg)
        # A duplicate older than the horizon is then late for every window, so it can
        # never be counted twice (see tables/dedupe.py).
        if self.duplicate_horizon and self.duplicate_horizon_ms < largest:
            msg = (
                f"{ENV_PREFIX}DUPLICATE_HORIZON={self.duplicate_horizon!r}: must be at least "
                f"the largest window, {ENV_PREFIX}{name} {format_duration(largest)}"
            )
            raise ValueError(msg)
        return self

    # -- parsed values ----------------------------------------------------------------

    @property
    def tumbling_ms(self) -> int:
        """Tumbling window size in ms."""
        return parse_duration(self.tumbling)

    @property
    def hopping_size_ms(self) -> int:
        """Hopping window size in ms."""
        return _hopping(self.hopping)[0]

    @property
    def hopping_step_ms(self) -> int:
        """Hopping window step in ms (the size is a multiple of it)."""
        return _hopping(self.hopping)[1]

    @property
    def sliding_ms(self) -> int:
        """Sliding window size in ms."""
        return parse_duration(self.sliding)

    @property
    def session_gap_ms(self) -> int:
        """Session inactivity gap in ms."""
        return parse_duration(self.session_gap)

    @property
    def allowed_lateness_ms(self) -> int:
        """Watermark delay in ms (may be 0)."""
        return parse_duration(self.allowed_lateness)

    @property
    def max_event_ahead_ms(self) -> int:
        """How far ahead of the wall clock an event time may be, in ms."""
        return parse_duration(self.max_event_ahead)

    @property
    def idle_timeout_ms(self) -> int:
        """Quiet time (wall clock) after which a partition's watermark follows the clock."""
        return parse_duration(self.idle_timeout)

    @property
    def retention_ms(self) -> int:
        """How long (event time) closed windows stay in the tables, in ms."""
        return parse_duration(self.retention)

    @property
    def kafka_connect_timeout_ms(self) -> int:
        """How long a command tries to reach the brokers at start, in ms."""
        return parse_duration(self.kafka_connect_timeout)

    @property
    def web_scheme(self) -> str:
        """``https`` when the web server has a certificate, else ``http``."""
        return "http" if self.web_cert_file is None else "https"

    @property
    def duplicate_horizon_ms(self) -> int:
        """How long (event time) an applied tx_id is remembered, in ms (default: retention)."""
        return parse_duration(self.duplicate_horizon) if self.duplicate_horizon else (
            self.retention_ms)

    @property
    def output_suffix(self) -> str:
        """Appended to every output topic name: ``-vN`` with versioned outputs, else empty."""
        return f"-v{self.state_version}" if self.outputs == "versioned" else ""

    @property
    def fetch_max_wait_ms(self) -> int:
        """Longest a fetch waits for records, in ms."""
        return parse_duration(self.fetch_max_wait)

    @property
    def flush_interval_ms(self) -> int:
        """How often in-memory state is written to the tables, in ms."""
        return parse_duration(self.flush_interval)

    @property
    def checkpoint_interval_ms(self) -> int:
        """How often flushed state is written to the local tables, in ms."""
        return parse_duration(self.checkpoint_interval)

    @property
    def session_timeout_ms(self) -> int:
        """Consumer group session timeout in ms."""
        return parse_duration(self.session_timeout)

    @property
    def alert_threshold_cents(self) -> int:
        """Alert threshold in cents (grosze)."""
        return _money_cents(self.alert_threshold)

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` of each broker in :attr:`broker`, as aiokafka takes them."""
        rest = self.broker.partition("://")[2]
        return [server.strip().removeprefix("kafka://") for server in rest.split(",")]


def _money_cents(text: str) -> int:
    """Cents of a validated ``1234`` / ``1234.5`` / ``1234.56`` amount (exact, no float)."""
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def _describe(exc: ValidationError) -> str:
    """One line per problem: ``TXSTREAM_X='bad': what is expected``."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"])
        if error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        if not error["loc"]:
            # A cross-field check (retention): its message already names the variable.
            lines.append(message)
            continue
        field = str(error["loc"][0])
        if error["type"] != "value_error":
            message = f"expected {_EXPECTED.get(field, 'a valid value')}"
        if field in SECRET_SETTINGS:
            # Never echo a secret, not even a wrong one (it may be the right one mistyped).
            lines.append(f"{_variable(field)}: {message}")
            continue
        lines.append(f"{_variable(field)}={_shown(error['input'])}: {message}")
    return "; ".join(lines)


def _shown(value: Any) -> str:
    """A bad value as an error shows it: its repr, cut to a bounded length."""
    text = repr(value.get_secret_value() if isinstance(value, SecretStr) else value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def window_config(settings: Settings) -> WindowConfig:
    """The windowing core's configuration from the settings."""
    return WindowConfig(
        tumbling_ms=settings.tumbling_ms,
        hopping_size_ms=settings.hopping_size_ms,
        hopping_step_ms=settings.hopping_step_ms,
        sliding_ms=settings.sliding_ms,
        session_gap_ms=settings.session_gap_ms,
        allowed_lateness_ms=settings.allowed_lateness_ms,
        idle_timeout_ms=settings.idle_timeout_ms,
        retention_ms=settings.retention_ms,
        alert_threshold_cents=settings.alert_threshold_cents,
        duplicate_horizon_ms=settings.duplicate_horizon_ms,
    )
