"""Fixtures for integration tests: txstream worker processes with their own names and ports."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from app.kafka.admin import ensure_topics
from app.kafka.broker import EmbeddedBroker
from app.kafka.proxy_thread import ProxyThread
from app.kafka.sasl_proxy import SaslProxy
from app.kafka.security import KafkaConnection, kafka_connection
from app.kafka.tls_certs import TlsFiles, make_tls_files
from app.kafka.tls_proxy import TlsProxy, TlsProxyThread, server_tls_context
from app.process import ManagedProcess
from app.settings import Settings
from app.testing import free_port, wait_until
from app.topics import TopicNames
from tests.conftest import connection_to

__all__ = ["SaslBroker", "TlsBroker", "Worker", "WorkerFactory"]

PARTITIONS = 4
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30))


def _https(ca_file: str) -> urllib3.PoolManager:
    """A client that trusts the test's web CA (and checks the host name)."""
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30),
                               ca_certs=ca_file, cert_reqs="CERT_REQUIRED")


@dataclass
class Worker:
    """A ``txstream worker`` process started by a test."""

    name: str
    env: dict[str, str]
    port: int
    datadir: Path
    process: ManagedProcess = field(repr=False)

    @property
    def base_url(self) -> str:
        """Where its web views answer (HTTPS when it has a certificate)."""
        scheme = "https" if self.env.get("TXSTREAM_WEB_CERT_FILE") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def token(self) -> str | None:
        """Its web token, if it has one."""
        return self.env.get("TXSTREAM_WEB_TOKEN") or None

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                auth: bool = True, **options: Any) -> urllib3.BaseHTTPResponse:
        """Any request; with ``auth``, the worker's own token goes along (if it has one)."""
        headers = dict(headers or {})
        if auth and self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        ca_file = self.env.get("TXSTREAM_WEB_CA_FILE")
        http = _http if not ca_file else _https(ca_file)
        return http.request(method, self.base_url + path, headers=headers, **options)

    def get(self, path: str, *, headers: dict[str, str] | None = None,
            auth: bool = True) -> tuple[int, Any]:
        """GET a view; (status, decoded JSON or text)."""
        response = self.request("GET", path, headers=headers, auth=auth)
        body = response.data
        try:
            return response.status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return response.status, body.decode(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until recovery is done and the web server answers."""
        self.process.wait_for_log(r"Worker ready", timeout)
        wait_until(lambda: self._answers(), timeout, message=f"{self.name} web views")

    def _answers(self) -> bool:
        try:
            return self.get("/stats/")[0] == 200
        except urllib3.exceptions.HTTPError:
            return False


@dataclass
class WorkerFactory:
    """Starts workers sharing one app id, topic prefix and settings; stops them by PID."""

    broker_url: str
    app_id: str
    base: Path
    settings: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    #: How the test's own clients connect (None: PLAINTEXT to ``broker_url``).
    connection: KafkaConnection | None = None

    def state_id(self, version: int = 1) -> str:
        """The consumer group and changelog prefix of one state version of this test."""
        return f"{self.settings['TXSTREAM_TOPIC_PREFIX']}{self.app_id}-v{version}"

    @property
    def topics(self) -> TopicNames:
        """This test's topic names."""
        return TopicNames(self.settings["TXSTREAM_TOPIC_PREFIX"])

    @property
    def kafka(self) -> KafkaConnection:
        """The broker as the Kafka clients' connection."""
        return self.connection or connection_to(self.broker_url)

    async def create_topics(self) -> None:
        """Create the input and output topics (workers do it too; tests may send first)."""
        await ensure_topics(self.kafka, dict.fromkeys(self.topics.all(), PARTITIONS))

    def start(self, name: str = "w1", *, datadir: Path | None = None, port: int | None = None,
              wait: bool = True, **settings: str) -> Worker:
        """Start ``txstream worker``; extra keyword settings become TXSTREAM_* variables."""
        port = port or free_port()
        datadir = datadir or self.base / f"{name}-data"
        env = {**self.settings, "TXSTREAM_WEB_PORT": str(port), "TXSTREAM_DATADIR": str(datadir)}
        env.update({f"TXSTREAM_{k.upper()}": v for k, v in settings.items()})
        process = ManagedProcess([sys.executable, "-m", "app", "worker", "-l", "info"], env=env,
                                 cwd=self.base, log_path=self.base / f"{name}.log", name=name)
        process.start()
        worker = Worker(name, env, port, datadir, process)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        """SIGTERM every worker, SIGKILL after a deadline."""
        for worker in self.workers:
            worker.process.terminate(timeout=15)


@pytest.fixture
def workers(broker_url: str, unique_id: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    """A factory of workers with this test's own app id, topics, data dirs and ports."""
    settings = {
        "TXSTREAM_BROKER": broker_url,
        "TXSTREAM_APP_ID": unique_id,
        "TXSTREAM_TOPIC_PREFIX": f"{unique_id}-",
        "TXSTREAM_PARTITIONS": str(PARTITIONS),
        "TXSTREAM_SESSION_TIMEOUT": "4s",
        "TXSTREAM_FLUSH_INTERVAL": "500ms",
        "TXSTREAM_EMBEDDED_BROKER": "false" if os.environ.get("TXSTREAM_TEST_BROKER") else "true",
    }
    factory = WorkerFactory(broker_url, unique_id, tmp_path, settings)
    try:
        yield factory
    finally:
        factory.stop_all()


@dataclass
class TlsBroker:
    """An embedded broker reachable only through a TLS proxy that requires client certs."""

    broker: EmbeddedBroker
    proxy: TlsProxyThread
    files: TlsFiles

    @property
    def url(self) -> str:
        """The proxy's address: what every client bootstraps from (and is told to use)."""
        return f"kafka://127.0.0.1:{self.proxy.port}"

    def settings(self, **overrides: str) -> dict[str, str]:
        """TXSTREAM_* variables of a client with mutual TLS (``overrides`` win; "" unsets)."""
        env = {
            "TXSTREAM_BROKER": self.url,
            "TXSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "TXSTREAM_KAFKA_CA_FILE": str(self.files.ca),
            "TXSTREAM_KAFKA_CERT_FILE": str(self.files.client.cert),
            "TXSTREAM_KAFKA_KEY_FILE": str(self.files.client.key),
        }
        env.update({f"TXSTREAM_{k.upper()}": v for k, v in overrides.items()})
        return env

    def connection(self) -> KafkaConnection:
        """The test's own clients' connection (mutual TLS)."""
        env = self.settings()
        return kafka_connection(Settings.load(
            broker=self.url, kafka_security_protocol="SSL",
            kafka_ca_file=env["TXSTREAM_KAFKA_CA_FILE"],
            kafka_cert_file=env["TXSTREAM_KAFKA_CERT_FILE"],
            kafka_key_file=env["TXSTREAM_KAFKA_KEY_FILE"]))


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A second embedded broker, behind a TLS proxy with mutual TLS (BROKER.md fact 13).

    The broker advertises the proxy's address, so every client connection (bootstrap,
    partition leaders, group coordinator) goes through TLS.
    """
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    proxy_port = free_port()
    broker = EmbeddedBroker(advertised_port=proxy_port)
    broker.start()
    proxy = TlsProxyThread(broker.port, server_tls_context(files.server.cert, files.server.key,
                                                           client_ca=files.ca), port=proxy_port)
    try:
        proxy.start()
        yield TlsBroker(broker, proxy, files)
    finally:
        proxy.stop()
        broker.stop()


def _secure_factory(url: str, env: dict[str, str], connection: KafkaConnection,
                    unique_id: str, tmp_path: Path, *, embedded: bool) -> WorkerFactory:
    settings = {
        **env,
        "TXSTREAM_APP_ID": unique_id,
        "TXSTREAM_TOPIC_PREFIX": f"{unique_id}-",
        "TXSTREAM_PARTITIONS": str(PARTITIONS),
        "TXSTREAM_SESSION_TIMEOUT": "4s",
        "TXSTREAM_FLUSH_INTERVAL": "500ms",
        "TXSTREAM_EMBEDDED_BROKER": "true" if embedded else "false",
    }
    return WorkerFactory(url, unique_id, tmp_path, settings, connection=connection)


@pytest.fixture
def tls_workers(tls_broker: TlsBroker, unique_id: str,
                tmp_path: Path) -> Iterator[WorkerFactory]:
    """Like ``workers``, on the TLS broker: workers and the test's clients use mutual TLS."""
    factory = _secure_factory(tls_broker.url, tls_broker.settings(), tls_broker.connection(),
                              unique_id, tmp_path, embedded=True)
    try:
        yield factory
    finally:
        factory.stop_all()


#: Set with TXSTREAM_TEST_BROKER and the TXSTREAM_KAFKA_* settings of a user on it to run
#: the SASL tests against a real SASL broker too.
SASL_USER = "alice"


@dataclass
class SaslBroker:
    """A broker that requires SASL: the embedded one behind SASL and TLS proxies, or yours."""

    url: str
    #: The TXSTREAM_* settings of a client that logs in.
    env: dict[str, str]
    proxy: SaslProxy | None = None

    def settings(self, **overrides: str) -> dict[str, str]:
        """Those settings, ``overrides`` winning ("" unsets)."""
        return {**self.env, **{f"TXSTREAM_{k.upper()}": v for k, v in overrides.items()}}

    def connection(self, **overrides: str) -> KafkaConnection:
        """A Kafka connection with those settings."""
        env = self.settings(**overrides)
        options = {k.removeprefix("TXSTREAM_").lower(): v for k, v in env.items() if v}
        return kafka_connection(Settings.load(**options))


def _external_sasl() -> SaslBroker | None:
    url = os.environ.get("TXSTREAM_TEST_BROKER")
    protocol = os.environ.get("TXSTREAM_KAFKA_SECURITY_PROTOCOL", "").upper()
    if not url or not protocol.startswith("SASL_"):
        return None
    env = {k: v for k, v in os.environ.items() if k.startswith("TXSTREAM_KAFKA_")}
    return SaslBroker(url, {**env, "TXSTREAM_BROKER": url})


@pytest.fixture(scope="session", params=["embedded", "external"])
def sasl_broker(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    """A broker that requires SASL/SCRAM-SHA-512 over TLS (SASL_SSL).

    ``embedded``: Tansu cannot authenticate (BROKER.md fact 13), so a SASL proxy answers the
    SASL exchange as Kafka does (a real SCRAM exchange) in front of it, and a TLS proxy in
    front of that; the broker advertises the outer address. ``external``: the broker of
    TXSTREAM_TEST_BROKER with your TXSTREAM_KAFKA_* settings (skipped without them).
    """
    if request.param == "external":
        external = _external_sasl()
        if external is None:
            pytest.skip("no external SASL broker: set TXSTREAM_TEST_BROKER and "
                        "TXSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT with "
                        "TXSTREAM_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD of a user")
        yield external
        return
    files = make_tls_files(tmp_path_factory.mktemp("sasl-tls"))
    password = f"pw-{uuid.uuid4().hex}"
    outer = free_port()
    broker = EmbeddedBroker(advertised_port=outer)
    broker.start()
    sasl = SaslProxy(broker.port, {SASL_USER: password})
    proxies = ProxyThread(TlsProxy(sasl.port, server_tls_context(files.server.cert,
                                                                 files.server.key),
                                   port=outer), sasl)
    try:
        proxies.start()
        url = f"kafka://127.0.0.1:{outer}"
        yield SaslBroker(url, {
            "TXSTREAM_BROKER": url,
            "TXSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TXSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TXSTREAM_KAFKA_USERNAME": SASL_USER,
            "TXSTREAM_KAFKA_PASSWORD": password,
            "TXSTREAM_KAFKA_CA_FILE": str(files.ca),
        }, sasl)
    finally:
        proxies.stop()
        broker.stop()


@pytest.fixture
def sasl_workers(sasl_broker: SaslBroker, unique_id: str,
                 tmp_path: Path) -> Iterator[WorkerFactory]:
    """Like ``workers``, on the SASL broker: workers and the test's clients log in."""
    factory = _secure_factory(sasl_broker.url, sasl_broker.settings(),
                              sasl_broker.connection(), unique_id, tmp_path,
                              embedded=sasl_broker.proxy is not None)
    try:
        yield factory
    finally:
        factory.stop_all()
