"""Unit tests for the security settings: Kafka TLS/SASL, web tokens and TLS, secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.exceptions import SettingsError
from app.settings import Settings

PASSWORD = "s3cr3t-Pa55word-never-shown"
TOKEN = "web-token-0123456789abcdef"


pytestmark = pytest.mark.usefixtures("clean_environment")


def _env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"TXSTREAM_{name.upper()}", value)


def _error(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    _env(monkeypatch, **variables)
    with pytest.raises(SettingsError) as info:
        Settings.load()
    return str(info.value)


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sasl_ssl_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _file(tmp_path, "ca.pem", "x")
    _env(monkeypatch, kafka_security_protocol="sasl_ssl", kafka_sasl_mechanism="scram-sha-512",
         kafka_username="alice", kafka_password=PASSWORD, kafka_ca_file=str(ca),
         kafka_check_hostname="false", kafka_connect_timeout="5s")
    settings = Settings.load()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism,
            settings.kafka_username, settings.kafka_ca_file, settings.kafka_check_hostname,
            settings.kafka_connect_timeout_ms) == (
        "SASL_SSL", "SCRAM-SHA-512", "alice", ca, False, 5000)
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == PASSWORD


def test_password_file__one_trailing_newline_dropped(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    secret = _file(tmp_path, "password", PASSWORD + "\n")
    _env(monkeypatch, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
         kafka_username="alice", kafka_password_file=str(secret))
    password = Settings.load().kafka_password
    assert password is not None
    assert password.get_secret_value() == PASSWORD


def test_token_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _env(monkeypatch, web_token_file=str(_file(tmp_path, "web", TOKEN + "\r\n")),
         metrics_token_file=str(_file(tmp_path, "metrics", TOKEN[::-1])))
    settings = Settings.load()
    assert settings.web_token is not None and settings.metrics_token is not None
    assert settings.web_token.get_secret_value() == TOKEN
    assert settings.metrics_token.get_secret_value() == TOKEN[::-1]


def test_empty_variables_mean_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # A compose file writes NAME: "" to leave a setting out.
    _env(monkeypatch, kafka_sasl_mechanism="", kafka_username="", kafka_password="",
         kafka_ca_file="", web_token="", web_cert_file="", web_key_file="")
    settings = Settings.load()
    assert (settings.kafka_sasl_mechanism, settings.kafka_username, settings.kafka_password,
            settings.kafka_ca_file, settings.web_token, settings.web_cert_file) == (
        None, None, None, None, None, None)


def test_web_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings.load().web_scheme == "http"
    _env(monkeypatch, web_cert_file=str(_file(tmp_path, "c", "x")),
         web_key_file=str(_file(tmp_path, "k", "x")), web_ca_file=str(_file(tmp_path, "a", "x")))
    assert Settings.load().web_scheme == "https"


@pytest.mark.parametrize(("variables", "message"), [
    ({"kafka_security_protocol": "TLS"},
     "TXSTREAM_KAFKA_SECURITY_PROTOCOL='TLS': expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
     "SASL_SSL"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"},
     "TXSTREAM_KAFKA_SASL_MECHANISM='GSSAPI': expected one of PLAIN, SCRAM-SHA-256, "
     "SCRAM-SHA-512"),
    ({"kafka_security_protocol": "SASL_SSL"},
     "TXSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs TXSTREAM_KAFKA_SASL_MECHANISM, "
     "TXSTREAM_KAFKA_USERNAME, TXSTREAM_KAFKA_PASSWORD (or TXSTREAM_KAFKA_PASSWORD_FILE)"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
      "kafka_password": PASSWORD},
     "TXSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs TXSTREAM_KAFKA_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN",
      "kafka_username": "alice"},
     "TXSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs TXSTREAM_KAFKA_PASSWORD "
     "(or TXSTREAM_KAFKA_PASSWORD_FILE)"),
    ({"kafka_username": "alice", "kafka_password": PASSWORD},
     "TXSTREAM_KAFKA_USERNAME, TXSTREAM_KAFKA_PASSWORD set, but "
     "TXSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL (use SASL_SSL or "
     "SASL_PLAINTEXT)"),
    ({"kafka_security_protocol": "SSL", "kafka_sasl_mechanism": "PLAIN"},
     "TXSTREAM_KAFKA_SASL_MECHANISM set, but TXSTREAM_KAFKA_SECURITY_PROTOCOL=SSL does not "
     "use SASL (use SASL_SSL or SASL_PLAINTEXT)"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN",
      "kafka_username": " alice", "kafka_password": PASSWORD},
     "TXSTREAM_KAFKA_USERNAME=' alice': expected a user name without leading or trailing "
     "spaces"),
    ({"kafka_connect_timeout": "0s"}, "TXSTREAM_KAFKA_CONNECT_TIMEOUT='0s': must be greater "
     "than zero"),
    ({"kafka_check_hostname": "perhaps"},
     "TXSTREAM_KAFKA_CHECK_HOSTNAME='perhaps': expected true or false"),
])
def test_bad_kafka_security__names_the_variables(monkeypatch: pytest.MonkeyPatch,
                                                  variables: dict[str, str],
                                                  message: str) -> None:
    assert _error(monkeypatch, **variables) == message


def test_tls_files_without_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _file(tmp_path, "ca.pem", "x")
    assert _error(monkeypatch, kafka_ca_file=str(ca)) == (
        "TXSTREAM_KAFKA_CA_FILE set, but TXSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use "
        "TLS (use SSL or SASL_SSL)")


def test_key_without_its_certificate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = _file(tmp_path, "key.pem", "x")
    assert _error(monkeypatch, kafka_security_protocol="SSL", kafka_key_file=str(key)) == (
        "TXSTREAM_KAFKA_KEY_FILE needs TXSTREAM_KAFKA_CERT_FILE (the client certificate it "
        "belongs to)")


@pytest.mark.parametrize("variable", [
    "kafka_ca_file", "kafka_cert_file", "kafka_key_file", "kafka_password_file",
    "web_token_file", "metrics_token_file", "web_cert_file", "web_key_file", "web_ca_file"])
def test_missing_file__names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          variable: str) -> None:
    missing = tmp_path / "nowhere" / "file.pem"
    message = _error(monkeypatch, kafka_security_protocol="SASL_SSL",
                     kafka_sasl_mechanism="PLAIN", kafka_username="alice",
                     **({} if variable == "kafka_password_file" else {"kafka_password": "p"}),
                     **{variable: str(missing)})
    assert message == (f"TXSTREAM_{variable.upper()}={str(missing)!r}: cannot read the file: "
                       "No such file or directory")


def test_unreadable_file__names_its_variable(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    message = _error(monkeypatch, kafka_security_protocol="SSL", kafka_ca_file=str(directory))
    assert message == (f"TXSTREAM_KAFKA_CA_FILE={str(directory)!r}: cannot read the file: "
                       "Is a directory")


@pytest.mark.parametrize("secret", ["kafka_password", "web_token", "metrics_token"])
def test_secret_and_its_file_both_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      secret: str) -> None:
    path = _file(tmp_path, "secret", TOKEN)
    message = _error(monkeypatch, **{secret: TOKEN, f"{secret}_file": str(path)})
    assert message == (f"set TXSTREAM_{secret.upper()} or TXSTREAM_{secret.upper()}_FILE, "
                       "not both")
    assert TOKEN not in message


@pytest.mark.parametrize("token", ["short-token", "token with spaces 123", "tökén-ünicode-1234"])
def test_weak_or_malformed_token__not_echoed(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    message = _error(monkeypatch, web_token=token)
    assert message == ("TXSTREAM_WEB_TOKEN: must be at least 16 visible ASCII characters "
                       "without spaces")
    assert token not in message


def test_bad_token_in_a_file__names_the_file_not_the_token(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    path = _file(tmp_path, "token", "too-short\n")
    message = _error(monkeypatch, metrics_token_file=str(path))
    assert message == (f"TXSTREAM_METRICS_TOKEN_FILE={str(path)!r}: the secret in it must be at "
                       "least 16 visible ASCII characters without spaces")
    assert "too-short" not in message


def test_empty_password_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _file(tmp_path, "password", "\n")
    message = _error(monkeypatch, kafka_security_protocol="SASL_SSL",
                     kafka_sasl_mechanism="PLAIN", kafka_username="alice",
                     kafka_password_file=str(path))
    assert message == (f"TXSTREAM_KAFKA_PASSWORD_FILE={str(path)!r}: the secret in it must "
                       "not be empty")


def test_web_tls_needs_both_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert = _file(tmp_path, "cert.pem", "x")
    assert _error(monkeypatch, web_cert_file=str(cert)) == (
        "set both TXSTREAM_WEB_CERT_FILE and TXSTREAM_WEB_KEY_FILE to serve HTTPS, or neither")


def test_web_ca_without_web_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _file(tmp_path, "ca.pem", "x")
    assert _error(monkeypatch, web_ca_file=str(ca)) == (
        "TXSTREAM_WEB_CA_FILE set, but the web server has no TLS (TXSTREAM_WEB_CERT_FILE, "
        "TXSTREAM_WEB_KEY_FILE)")


def test_secrets_never_in_repr_str_or_dump(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    _env(monkeypatch, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
         kafka_username="alice", kafka_password=PASSWORD, web_token=TOKEN,
         metrics_token_file=str(_file(tmp_path, "m", TOKEN[::-1])))
    settings = Settings.load()
    for text in (repr(settings), str(settings), str(settings.model_dump()),
                 settings.model_dump_json()):
        assert PASSWORD not in text
        assert TOKEN not in text
        assert TOKEN[::-1] not in text


def test_a_long_bad_value_is_shown_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, kafka_security_protocol="X" * 500)
    assert message.startswith("TXSTREAM_KAFKA_SECURITY_PROTOCOL='XXXX")
    assert len(message) < 250
