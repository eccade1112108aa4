"""docker-compose.yml and the Dockerfile, checked statically (CI has no Docker engine)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from app.kafka.security import parse_broker_url
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = "/run/secrets/"


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


def make_secrets(directory: Path) -> dict[str, Path]:
    """Run scripts/make-secrets into ``directory``: secret name -> its file, as compose maps it."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "make-secrets"), str(directory)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return {name: directory / Path(spec["file"]).name
            for name, spec in compose()["secrets"].items()}


def in_container(env: dict[str, Any], secrets: dict[str, Path]) -> dict[str, str]:
    """A service's environment with /run/secrets/NAME pointing at the generated file."""
    return {key: str(secrets[str(value).removeprefix(SECRETS)]) if str(value).startswith(SECRETS)
            else str(value) for key, value in env.items()}


def test_workers_and_generator_reach_the_advertised_listener(monkeypatch: Any,
                                                              tmp_path: Path) -> None:
    secrets = make_secrets(tmp_path / "secrets")
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
        for key, value in in_container(env, secrets).items():
            monkeypatch.setenv(key, value)
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


def _workers(services: dict[str, Any]) -> list[str]:
    return [name for name in services if name.startswith("worker")]


def test_workers_are_healthy_when_ready_and_start_after_kafka() -> None:
    services = compose()["services"]
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    for name in _workers(services):
        service = services[name]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        probe = " ".join(service["healthcheck"]["test"])
        port = service["environment"]["TXSTREAM_WEB_PORT"]
        # The probe is never behind the token, so the healthcheck needs none.
        assert re.search(rf"http://127\.0\.0\.1:{port}/(readyz|healthz)", probe), probe
        assert service["healthcheck"]["start_period"]
    # The generator sends only once a worker is ready to process what it sends.
    assert services["generator"]["depends_on"]["worker-1"]["condition"] == "service_healthy"


def test_each_worker_is_reachable_by_the_others_under_its_own_name() -> None:
    # Bound to 0.0.0.0, a worker advertises its host name (or TXSTREAM_WEB_ADVERTISED_HOST)
    # for requests routed to the partition owner: each must be a distinct, resolvable name.
    services = compose()["services"]
    names = []
    for name in _workers(services):
        service = services[name]
        assert service["environment"]["TXSTREAM_WEB_HOST"] == "0.0.0.0"
        names.append(service["environment"].get("TXSTREAM_WEB_ADVERTISED_HOST")
                     or service["hostname"])
    assert len(set(names)) == len(names) == 2
    assert set(names) <= set(services), "a compose service name resolves in its network"


def test_secrets_come_from_docker_secrets_never_from_the_file(tmp_path: Path) -> None:
    document = compose()
    services, declared = document["services"], document["secrets"]
    for spec in declared.values():
        assert spec["file"].startswith("./secrets/")
    for name in [*_workers(services), "generator"]:
        env, mounted = services[name]["environment"], services[name]["secrets"]
        for variable in ("TXSTREAM_KAFKA_PASSWORD", "TXSTREAM_WEB_TOKEN",
                         "TXSTREAM_METRICS_TOKEN"):
            assert variable not in env, f"{name}: {variable} in plain text"
        for key, value in env.items():
            if key.endswith("_FILE"):
                secret = str(value).removeprefix(SECRETS)
                assert str(value).startswith(SECRETS) and secret in mounted, (name, key)
                assert secret in declared
        assert env["TXSTREAM_KAFKA_PASSWORD_FILE"] == SECRETS + "kafka_password"
    for name in _workers(services):
        assert services[name]["environment"]["TXSTREAM_WEB_TOKEN_FILE"] == SECRETS + "web_token"
    assert "TXSTREAM_WEB_TOKEN_FILE" not in services["generator"]["environment"]


def test_kafka_and_the_workers_agree_on_sasl(tmp_path: Path) -> None:
    secrets = make_secrets(tmp_path / "secrets")
    services = compose()["services"]
    kafka = services["kafka"]
    env = kafka["environment"]
    listener = env["KAFKA_ADVERTISED_LISTENERS"].split("://", 1)[0]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
                     .split(","))
    jaas_path = env["KAFKA_OPTS"].split("java.security.auth.login.config=", 1)[1]
    assert jaas_path.removeprefix(SECRETS) in kafka["secrets"]
    command_config = kafka["healthcheck"]["test"][1].split("--command-config ", 1)[1].split()[0]
    assert command_config.removeprefix(SECRETS) in kafka["secrets"]
    jaas = secrets[jaas_path.removeprefix(SECRETS)].read_text()
    admin_client = secrets[command_config.removeprefix(SECRETS)].read_text()
    for name in [*_workers(services), "generator"]:
        worker = services[name]["environment"]
        assert worker["TXSTREAM_KAFKA_SECURITY_PROTOCOL"] == protocols[listener]
        assert worker["TXSTREAM_KAFKA_SASL_MECHANISM"] in env["KAFKA_SASL_ENABLED_MECHANISMS"]
        # The password the worker reads is the one the broker holds for its user.
        password = secrets["kafka_password"].read_text().strip()
        assert f'user_{worker["TXSTREAM_KAFKA_USERNAME"]}="{password}"' in jaas
    admin = re.search(r'username="admin"\s+password="([^"]+)"', jaas)
    assert admin is not None
    assert f'user_admin="{admin.group(1)}"' in jaas
    assert f'username="admin" password="{admin.group(1)}";' in admin_client
    assert "security.protocol=SASL_PLAINTEXT" in admin_client


def test_make_secrets_keeps_what_exists(tmp_path: Path) -> None:
    first = make_secrets(tmp_path / "secrets")
    before = {name: path.read_text() for name, path in first.items()}
    assert len(before["web_token"].strip()) >= 40  # random, well over the 16 required
    second = make_secrets(tmp_path / "secrets")
    assert {name: path.read_text() for name, path in second.items()} == before
    assert oct((tmp_path / "secrets").stat().st_mode & 0o777) == "0o700"
