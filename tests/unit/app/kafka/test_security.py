"""Unit tests for app.kafka.security: settings -> aiokafka options and Faust credentials."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol

from app.exceptions import SettingsError
from app.kafka.security import KafkaConnection, kafka_connection
from app.kafka.tls_certs import TlsFiles, make_tls_files
from app.settings import Settings
from app.txapp import build_app

PASSWORD = "pa55-word-not-to-be-seen"


pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _settings(tls: TlsFiles, protocol: str, **more: object) -> Settings:
    options: dict[str, object] = {"broker": "kafka://k1:9093,k2:9093",
                                  "kafka_security_protocol": protocol}
    if protocol.endswith("SSL"):
        options.update(kafka_ca_file=tls.ca, kafka_cert_file=tls.client.cert,
                       kafka_key_file=tls.client.key)
    if protocol.startswith("SASL"):
        options.update(kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username="alice",
                       kafka_password=PASSWORD)
    options.update(more)
    return Settings.load(**options)


def test_plaintext() -> None:
    kafka = KafkaConnection.plain("kafka://a:9092,b:9092")
    assert kafka.client_kwargs(linger_ms=5) == {
        "bootstrap_servers": "a:9092,b:9092", "security_protocol": "PLAINTEXT", "linger_ms": 5}
    assert kafka.faust_credentials() is None
    assert str(kafka) == "a:9092,b:9092"
    assert kafka.describe() == "PLAINTEXT to a:9092,b:9092"


def test_sasl_ssl(tls: TlsFiles) -> None:
    kafka = kafka_connection(_settings(tls, "SASL_SSL", kafka_check_hostname=False))
    kwargs = kafka.security_kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_plain_username": "alice", "sasl_plain_password": PASSWORD}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert kafka.client_cert
    assert kafka.describe() == "SASL_SSL (SCRAM-SHA-512 as alice) to k1:9093,k2:9093"


def test_ssl_checks_host_names_by_default(tls: TlsFiles) -> None:
    kafka = kafka_connection(_settings(tls, "SSL"))
    assert kafka.security_kwargs() == {"security_protocol": "SSL",
                                       "ssl_context": kafka.ssl_context}
    assert kafka.ssl_context is not None and kafka.ssl_context.check_hostname is True


def test_sasl_plaintext_has_no_tls(tls: TlsFiles) -> None:
    kafka = kafka_connection(_settings(tls, "SASL_PLAINTEXT"))
    assert kafka.ssl_context is None
    assert "ssl_context" not in kafka.security_kwargs()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_gets_the_same_options_as_our_clients(tls: TlsFiles, protocol: str) -> None:
    # Faust's aiokafka driver turns broker_credentials into client options with this very
    # function, for its consumer and its producer: they must equal ours.
    settings = _settings(tls, protocol)
    app = build_app(settings)
    faust_options = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials,
                                                     app.conf.ssl_context))
    ours = app.kafka.security_kwargs()
    if protocol == "PLAINTEXT":
        assert faust_options == {"security_protocol": "PLAINTEXT"}
        assert ours == faust_options
        return
    faust_options = {k: v for k, v in faust_options.items() if v is not None}
    assert faust_options == ours
    credentials = app.conf.broker_credentials
    assert credentials.protocol == AuthProtocol(protocol)
    expected_type = faust.SASLCredentials if protocol.startswith("SASL") else faust.SSLCredentials
    assert isinstance(credentials, expected_type)


def test_the_password_is_never_shown(tls: TlsFiles) -> None:
    settings = _settings(tls, "SASL_SSL")
    kafka = kafka_connection(settings)
    app = build_app(settings)
    for text in (repr(kafka), str(kafka), kafka.describe(), repr(app.conf.broker_credentials),
                 repr(settings)):
        assert PASSWORD not in text


def test_librdkafka_properties(tls: TlsFiles) -> None:
    kafka = kafka_connection(_settings(tls, "SASL_SSL", kafka_check_hostname=False))
    assert kafka.librdkafka_config() == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "sasl_ssl",
        "ssl.endpoint.identification.algorithm": "none", "ssl.ca.location": str(tls.ca),
        "ssl.certificate.location": str(tls.client.cert),
        "ssl.key.location": str(tls.client.key), "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": PASSWORD}
    assert KafkaConnection.plain("kafka://a:1").librdkafka_config() == {
        "bootstrap.servers": "a:1", "security.protocol": "plaintext"}


def test_ca_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"^TXSTREAM_KAFKA_CA_FILE='.*ca\.pem': no CA "
                                            r"certificate in it"):
        kafka_connection(Settings.load(kafka_security_protocol="SSL", kafka_ca_file=bad))


def test_client_key_of_another_certificate(tls: TlsFiles, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other")
    with pytest.raises(SettingsError) as info:
        kafka_connection(Settings.load(kafka_security_protocol="SSL", kafka_ca_file=tls.ca,
                                       kafka_cert_file=tls.client.cert,
                                       kafka_key_file=other.client.key))
    assert str(info.value) == ("TXSTREAM_KAFKA_CERT_FILE / TXSTREAM_KAFKA_KEY_FILE: the key "
                               "does not belong to the certificate")


def test_client_certificate_that_is_not_pem(tls: TlsFiles, tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("garbage\n")
    with pytest.raises(SettingsError, match=r"^TXSTREAM_KAFKA_CERT_FILE: not a PEM certificate"):
        kafka_connection(Settings.load(kafka_security_protocol="SSL", kafka_cert_file=bad))
