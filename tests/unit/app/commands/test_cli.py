"""The command line: bad settings and bad arguments stop it with one clear line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TXSTREAM_")}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=tmp_path,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize(("variable", "value"), [
    ("TXSTREAM_TUMBLING", "5x"),
    ("TXSTREAM_HOPPING", "10m/3m"),
    ("TXSTREAM_WEB_PORT", "99999"),
    ("TXSTREAM_BROKER", "http://nope"),
    ("TXSTREAM_ALERT_THRESHOLD", "-1"),
])
def test_a_bad_setting_stops_the_worker_naming_the_variable(
        tmp_path: Path, variable: str, value: str) -> None:
    done = run(["worker"], tmp_path, **{variable: value})
    assert done.returncode == 2
    assert variable in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_bad_setting_in_a_dotenv_file_is_named_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TXSTREAM_RETENTION=1m\n")
    done = run(["worker"], tmp_path)
    assert done.returncode == 2
    assert "TXSTREAM_RETENTION" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_txstreams_commands(tmp_path: Path) -> None:
    done = run(["--help"], tmp_path)
    assert done.returncode == 0
    for command in ("worker", "broker", "demo", "produce", "alerts", "report", "replay"):
        assert f"  {command}" in done.stdout
