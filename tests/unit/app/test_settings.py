"""Unit tests for app.settings: defaults, parsed values and errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.exceptions import SettingsError
from app.settings import Settings, window_config

DURATION_HINT = "write 500ms, 30s, 5m or 1h; compounds like 1h30m work too"


pytestmark = pytest.mark.usefixtures("clean_environment")


def test_defaults() -> None:
    settings = Settings.load()
    assert settings.model_dump() == {
        "broker": "kafka://localhost:9092",
        "app_id": "txstream",
        "web_host": "127.0.0.1",
        "web_advertised_host": None,
        "web_port": 6066,
        "datadir": Path("./data"),
        "partitions": 4,
        "tumbling": "5m",
        "hopping": "10m/2m",
        "sliding": "10m",
        "session_gap": "15m",
        "allowed_lateness": "5s",
        "idle_timeout": "30s",
        "retention": "2h",
        "alert_threshold": "5000",
        "flush_interval": "5s",
        "checkpoint_interval": "30s",
        "flush_when_quiet": True,
        "standby_replicas": 1,
        "session_timeout": "10s",
        "embedded_broker": False,
        "state_version": 1,
        "log_level": "info",
        "topic_prefix": "",
        "window_kinds": "tumbling,hopping,sliding,session",
        "fetch_max_wait": "100ms",
        "max_event_ahead": "5m",
        "kafka_security_protocol": "PLAINTEXT",
        "kafka_sasl_mechanism": None,
        "kafka_username": None,
        "kafka_password": None,
        "kafka_password_file": None,
        "kafka_ca_file": None,
        "kafka_cert_file": None,
        "kafka_key_file": None,
        "kafka_check_hostname": True,
        "kafka_connect_timeout": "30s",
        "web_token": None,
        "web_token_file": None,
        "metrics_token": None,
        "metrics_token_file": None,
        "web_cert_file": None,
        "web_key_file": None,
        "web_ca_file": None,
        "duplicate_horizon": "",
        "outputs": "live",
        "compression": "zstd",
    }


def test_defaults__parsed_values() -> None:
    settings = Settings.load()
    parsed = {
        "tumbling_ms": settings.tumbling_ms,
        "hopping_size_ms": settings.hopping_size_ms,
        "hopping_step_ms": settings.hopping_step_ms,
        "sliding_ms": settings.sliding_ms,
        "session_gap_ms": settings.session_gap_ms,
        "allowed_lateness_ms": settings.allowed_lateness_ms,
        "idle_timeout_ms": settings.idle_timeout_ms,
        "retention_ms": settings.retention_ms,
        "flush_interval_ms": settings.flush_interval_ms,
        "checkpoint_interval_ms": settings.checkpoint_interval_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "alert_threshold_cents": settings.alert_threshold_cents,
        "max_event_ahead_ms": settings.max_event_ahead_ms,
        "bootstrap_servers": settings.bootstrap_servers,
        "duplicate_horizon_ms": settings.duplicate_horizon_ms,
        "output_suffix": settings.output_suffix,
    }
    assert parsed == {
        "tumbling_ms": 300_000,
        "hopping_size_ms": 600_000,
        "hopping_step_ms": 120_000,
        "sliding_ms": 600_000,
        "session_gap_ms": 900_000,
        "allowed_lateness_ms": 5_000,
        "idle_timeout_ms": 30_000,
        "retention_ms": 7_200_000,
        "flush_interval_ms": 5_000,
        "checkpoint_interval_ms": 30_000,
        "session_timeout_ms": 10_000,
        "alert_threshold_cents": 500_000,
        "max_event_ahead_ms": 300_000,
        "bootstrap_servers": ["localhost:9092"],
        "duplicate_horizon_ms": 7_200_000,  # the retention
        "output_suffix": "",
    }


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TXSTREAM_BROKER": "kafka://k1:9092,k2:9093",
        "TXSTREAM_APP_ID": "tx-stream_2.prod",
        "TXSTREAM_WEB_HOST": "0.0.0.0",
        "TXSTREAM_WEB_PORT": "8080",
        "TXSTREAM_DATADIR": "/var/lib/txstream",
        "TXSTREAM_PARTITIONS": "12",
        "TXSTREAM_TUMBLING": "1h",
        "TXSTREAM_HOPPING": "1h/15m",
        "TXSTREAM_SLIDING": "30m",
        "TXSTREAM_SESSION_GAP": "20m",
        "TXSTREAM_ALLOWED_LATENESS": "0s",
        "TXSTREAM_IDLE_TIMEOUT": "1m",
        "TXSTREAM_RETENTION": "1d",
        "TXSTREAM_ALERT_THRESHOLD": "4999.9",
        "TXSTREAM_FLUSH_INTERVAL": "250ms",
        "TXSTREAM_STANDBY_REPLICAS": "0",
        "TXSTREAM_SESSION_TIMEOUT": "30s",
        "TXSTREAM_EMBEDDED_BROKER": "true",
        "TXSTREAM_STATE_VERSION": "3",
        "TXSTREAM_LOG_LEVEL": "DEBUG",
        "TXSTREAM_TOPIC_PREFIX": "t1-",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    got = (
        settings.bootstrap_servers,
        settings.app_id,
        settings.web_host,
        settings.web_port,
        settings.datadir,
        settings.partitions,
        settings.tumbling_ms,
        settings.hopping_size_ms,
        settings.hopping_step_ms,
        settings.sliding_ms,
        settings.session_gap_ms,
        settings.allowed_lateness_ms,
        settings.idle_timeout_ms,
        settings.retention_ms,
        settings.alert_threshold_cents,
        settings.flush_interval_ms,
        settings.standby_replicas,
        settings.session_timeout_ms,
        settings.embedded_broker,
        settings.state_version,
        settings.log_level,
        settings.topic_prefix,
    )
    assert got == (
        ["k1:9092", "k2:9093"],
        "tx-stream_2.prod",
        "0.0.0.0",
        8080,
        Path("/var/lib/txstream"),
        12,
        3_600_000,
        3_600_000,
        900_000,
        1_800_000,
        1_200_000,
        0,
        60_000,
        86_400_000,
        499_990,
        250,
        0,
        30_000,
        True,
        3,
        "debug",
        "t1-",
    )


def test_dotenv_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TXSTREAM_PARTITIONS=8\nTXSTREAM_TUMBLING=10m\nTXSTREAM_TEST_BROKER=kafka://x:1\n"
    )
    settings = Settings.load()
    assert (settings.partitions, settings.tumbling_ms) == (8, 600_000)


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TXSTREAM_PARTITIONS=8\n")
    monkeypatch.setenv("TXSTREAM_PARTITIONS", "6")
    assert Settings.load().partitions == 6


def test_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXSTREAM_PARTITIONS", "6")
    assert Settings.load(partitions=2).partitions == 2


def test_dotenv_bad_value__names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TXSTREAM_TUMBLING=5x\n")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value) == f"TXSTREAM_TUMBLING='5x': not a duration ({DURATION_HINT})"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BROKER", "localhost:9092", "expected kafka://host:port[,host:port...]"),
        ("BROKER", "kafka://localhost", "expected kafka://host:port[,host:port...]"),
        ("BROKER", "kafka://a:9092,", "expected kafka://host:port[,host:port...]"),
        ("BROKER", "kafka://a:99999", "expected kafka://host:port[,host:port...]"),
        ("BROKER", "http://a:9092", "expected kafka://host:port[,host:port...]"),
        ("APP_ID", "tx stream", "use only letters, digits, '.', '_' and '-'"),
        ("MAX_EVENT_AHEAD", "soon", f"not a duration ({DURATION_HINT})"),
        ("APP_ID", "", "use only letters, digits, '.', '_' and '-'"),
        ("WEB_HOST", "", "expected a host name or IP address"),
        ("WEB_ADVERTISED_HOST", "0.0.0.0", "expected a host name or IP address other workers "
                                           "can reach"),
        ("WEB_PORT", "0", "expected an integer port 1..65535"),
        ("WEB_PORT", "65536", "expected an integer port 1..65535"),
        ("WEB_PORT", "http", "expected an integer port 1..65535"),
        ("PARTITIONS", "0", "expected an integer >= 1"),
        ("PARTITIONS", "four", "expected an integer >= 1"),
        ("TUMBLING", "5x", f"not a duration ({DURATION_HINT})"),
        ("TUMBLING", "5", f"not a duration ({DURATION_HINT})"),
        ("TUMBLING", "0s", "must be greater than zero"),
        ("HOPPING", "10m", "expected size/step durations, e.g. 10m/2m"),
        ("HOPPING", "10m/3m", "the size must be a positive multiple of the step, e.g. 10m/2m"),
        ("HOPPING", "10m/0s", "must be greater than zero"),
        ("HOPPING", "10x/2m", f"not a duration ({DURATION_HINT})"),
        ("SLIDING", "0ms", "must be greater than zero"),
        ("SESSION_GAP", "-1m", f"not a duration ({DURATION_HINT})"),
        ("ALLOWED_LATENESS", "soon", f"not a duration ({DURATION_HINT})"),
        ("IDLE_TIMEOUT", "0s", "must be greater than zero"),
        ("RETENTION", "2 hours", f"not a duration ({DURATION_HINT})"),
        (
            "ALERT_THRESHOLD",
            "1.005",
            "expected a positive amount in PLN with at most 2 decimals, e.g. 5000 or 4999.99",
        ),
        (
            "ALERT_THRESHOLD",
            "0",
            "expected a positive amount in PLN with at most 2 decimals, e.g. 5000 or 4999.99",
        ),
        (
            "ALERT_THRESHOLD",
            "-5",
            "expected a positive amount in PLN with at most 2 decimals, e.g. 5000 or 4999.99",
        ),
        ("FLUSH_INTERVAL", "0s", "must be greater than zero"),
        ("CHECKPOINT_INTERVAL", "half a minute", f"not a duration ({DURATION_HINT})"),
        ("CHECKPOINT_INTERVAL", "-1s", f"not a duration ({DURATION_HINT})"),
        ("STANDBY_REPLICAS", "-1", "expected an integer >= 0"),
        ("SESSION_TIMEOUT", "10", f"not a duration ({DURATION_HINT})"),
        ("EMBEDDED_BROKER", "maybe", "expected true or false"),
        ("STATE_VERSION", "0", "expected an integer >= 1"),
        ("LOG_LEVEL", "LOUD", "expected one of debug, info, warning, error"),
        ("TOPIC_PREFIX", "a/b-", "use only letters, digits, '.', '_' and '-' (or nothing)"),
        ("DUPLICATE_HORIZON", "2 hours", f"not a duration ({DURATION_HINT})"),
        ("DUPLICATE_HORIZON", "0s", "must be greater than zero"),
        ("OUTPUTS", "quiet", "expected one of live, none, versioned"),
        ("OUTPUTS", "", "expected one of live, none, versioned"),
        ("COMPRESSION", "brotli", "expected one of none, gzip, snappy, lz4, zstd"),
    ],
)
def test_bad_value__names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"TXSTREAM_{variable}", value)
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value) == f"TXSTREAM_{variable}={value!r}: {message}"


def test_retention_shorter_than_largest_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXSTREAM_RETENTION", "10m")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value) == (
        "TXSTREAM_RETENTION='10m': must be at least the largest window, TXSTREAM_SESSION_GAP 15m"
    )


def test_duplicate_horizon_shorter_than_largest_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXSTREAM_DUPLICATE_HORIZON", "10m")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value) == (
        "TXSTREAM_DUPLICATE_HORIZON='10m': must be at least the largest window, "
        "TXSTREAM_SESSION_GAP 15m"
    )


def test_duplicate_horizon__default_follows_the_retention_and_can_be_set() -> None:
    assert (Settings.load(retention="6h").duplicate_horizon_ms,
            Settings.load(retention="6h", duplicate_horizon=" 30m ").duplicate_horizon_ms,
            window_config(Settings.load(duplicate_horizon="1h")).duplicate_horizon_ms) == (
        6 * 3_600_000, 30 * 60_000, 3_600_000)


def test_outputs__versioned_topics_carry_the_state_version() -> None:
    assert [(s.outputs, s.output_suffix) for s in (
        Settings.load(outputs="Versioned", state_version=3), Settings.load(outputs=" none"),
        Settings.load())] == [("versioned", "-v3"), ("none", ""), ("live", "")]


def test_retention_equal_to_largest_window_is_enough() -> None:
    assert Settings.load(retention="15m").retention_ms == 900_000


def test_several_bad_values__all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXSTREAM_PARTITIONS", "0")
    monkeypatch.setenv("TXSTREAM_SLIDING", "5x")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value) == (
        "TXSTREAM_PARTITIONS='0': expected an integer >= 1; "
        f"TXSTREAM_SLIDING='5x': not a duration ({DURATION_HINT})"
    )


def test_bad_override__named_like_a_variable() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(web_port=70000)
    assert str(info.value) == "TXSTREAM_WEB_PORT=70000: expected an integer port 1..65535"


def test_unknown_override() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.load(tumbling_window="5m")
    assert str(info.value) == "unknown setting(s): tumbling_window"


def test_error_has_no_pydantic_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXSTREAM_WEB_PORT", "http")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    text = str(info.value)
    assert "pydantic" not in text
    assert "Input should" not in text
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True


def test_broker_forms() -> None:
    servers = Settings.load(
        broker="kafka://a.example.com:9092,kafka://[::1]:9093"
    ).bootstrap_servers
    assert servers == ["a.example.com:9092", "[::1]:9093"]


def test_frozen() -> None:
    settings = Settings.load()
    with pytest.raises(ValueError, match="frozen"):
        settings.partitions = 8
