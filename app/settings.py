"""The one Settings object: TXSTREAM_* environment variables, validated at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tables.windows import WindowConfig

from .durations import format_duration, parse_duration
from .exceptions import SettingsError

__all__ = ["ENV_PREFIX", "OUTPUT_MODES", "Settings", "window_config"]

ENV_PREFIX = "TXSTREAM_"

_DURATION_HINT = "write 500ms, 30s, 5m or 1h; compounds like 1h30m work too"
_HOST_PORT = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})"
)
_APP_ID = re.compile(r"[A-Za-z0-9._-]+")
_MONEY = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_LOG_LEVELS = ("debug", "info", "warning", "error")
#: Where a worker sends its output records (TXSTREAM_OUTPUTS).
OUTPUT_MODES = ("live", "none", "versioned")

# What each field expects, for errors pydantic raises itself (wrong type, out of range):
# its own wording ("Input should be greater than or equal to 1") names no variable.
_EXPECTED: dict[str, str] = {
    "broker": "kafka://host:port[,host:port...]",
    "app_id": "letters, digits, '.', '_' or '-'",
    "web_host": "a host name or IP address",
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
    "standby_replicas": "an integer >= 0",
    "session_timeout": f"a duration ({_DURATION_HINT})",
    "embedded_broker": "true or false",
    "state_version": "an integer >= 1",
    "log_level": "one of debug, info, warning, error",
    "topic_prefix": "letters, digits, '.', '_' or '-' (or nothing)",
    "fetch_max_wait": f"a duration ({_DURATION_HINT})",
    "window_kinds": "a comma-separated list of tumbling, hopping, sliding, session "
    "(tumbling is required)",
    "duplicate_horizon": f"a duration ({_DURATION_HINT}), or nothing for TXSTREAM_RETENTION",
    "outputs": "one of live, none, versioned",
}


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
    flush_when_quiet: bool = True
    standby_replicas: int = Field(default=1, ge=0)
    session_timeout: str = "10s"
    embedded_broker: bool = False
    state_version: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    topic_prefix: str = ""
    window_kinds: str = "tumbling,hopping,sliding,session"
    fetch_max_wait: str = "100ms"
    duplicate_horizon: str = ""
    outputs: Literal["live", "none", "versioned"] = "live"

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
    )
    @classmethod
    def _check_positive_duration(cls, value: str) -> str:
        _duration(value, positive=True)
        return value.strip()

    @field_validator("allowed_lateness")
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
        # Before pydantic's Literal check, so the error shows the value as written.
        mode = value.strip().lower() if isinstance(value, str) else value
        if mode not in OUTPUT_MODES:
            msg = "expected one of live, none, versioned"
            raise ValueError(msg)
        return mode

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
        # Checked here, before pydantic's Literal check, so the error shows the value as
        # written ("LOUD"), and any case is accepted.
        level = value.strip().lower() if isinstance(value, str) else value
        if level not in _LOG_LEVELS:
            msg = "expected one of debug, info, warning, error"
            raise ValueError(msg)
        return level

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
    def idle_timeout_ms(self) -> int:
        """Quiet time (wall clock) after which a partition's watermark follows the clock."""
        return parse_duration(self.idle_timeout)

    @property
    def retention_ms(self) -> int:
        """How long (event time) closed windows stay in the tables, in ms."""
        return parse_duration(self.retention)

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
        lines.append(f"{ENV_PREFIX}{field.upper()}={error['input']!r}: {message}")
    return "; ".join(lines)


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
