"""docker-compose.yml and the Dockerfile, checked statically (CI has no Docker engine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from app.kafka.security import parse_broker_url
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = compose()["services"]
    assert not any("zookeeper" in name for name in services)
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    # Faust does not create source topics and auto-creation would pick a partition count.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_workers_and_generator_reach_the_advertised_listener(monkeypatch: Any) -> None:
    services = compose()["services"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    host_port = advertised.split("://", 1)[1]
    workers = [name for name in services if name.startswith("worker")]
    assert len(workers) >= 2, "two workers share the partitions"
    for name in [*workers, "generator"]:
        service = services[name]
        env = service["environment"]
        assert parse_broker_url(env["TXSTREAM_BROKER"]) == host_port
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        # Every TXSTREAM_* value in the file must be a valid setting.
        for key in list(os.environ):
            if key.startswith("TXSTREAM_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        Settings.load()
    assert services["generator"]["command"][0] == "produce"
    for name in workers:
        assert services[name]["command"][0] == "worker"
        assert services[name]["environment"]["TXSTREAM_WEB_HOST"] == "0.0.0.0"
    ports = [services[name]["ports"][0].split(":")[0] for name in workers]
    assert len(set(ports)) == len(ports), "each worker's web port is published once"


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in text
    assert "pip install --no-cache-dir ." in text
    assert 'ENTRYPOINT ["txstream"]' in text
    for package in ("app", "agents", "tables"):
        assert f"COPY {package} ./{package}" in text
    # The compiled encoders need setup.py and a C compiler at build time.
    assert "COPY pyproject.toml setup.py" in text
    assert "install -y --no-install-recommends gcc" in text
