"""Fixtures for integration tests: txstream worker processes with their own names and ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from app.kafka.admin import ensure_topics
from app.kafka.security import KafkaConnection
from app.process import ManagedProcess
from app.testing import free_port, wait_until
from app.topics import TopicNames

__all__ = ["Worker", "WorkerFactory"]

PARTITIONS = 4
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30))


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
        """Where its web views answer."""
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, Any]:
        """GET a view; (status, decoded JSON or text)."""
        response = _http.request("GET", self.base_url + path)
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

    @property
    def topics(self) -> TopicNames:
        """This test's topic names."""
        return TopicNames(self.settings["TXSTREAM_TOPIC_PREFIX"])

    @property
    def kafka(self) -> KafkaConnection:
        """The broker as the Kafka clients' connection."""
        return KafkaConnection.plain(self.broker_url)

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
