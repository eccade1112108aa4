"""Child processes: started in their own session, logged to a file, stopped by process group."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from .exceptions import BrokerError

__all__ = [
    "ManagedProcess",
    "WaitTimeout",
    "die_with_parent",
    "free_port",
    "process_alive",
    "terminate_process_group",
]

_LOG_TAIL_CHARS = 4000
#: prctl option: signal to deliver to this process when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


class WaitTimeout(AssertionError, TimeoutError):
    """A condition polled with a deadline did not become true in time.

    An AssertionError so that pytest reports it as a test failure, and a TimeoutError
    so that callers outside tests can catch it as one.
    """


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In a child before exec: ask the kernel for SIGTERM when the parent dies.

    A broker or worker whose parent was killed outright (SIGKILL, a CI timeout) would
    otherwise live on, holding ports, with nobody left to stop it.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate_process_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM the process group led by ``proc``, SIGKILL it after ``timeout``; return the code.

    ``proc`` must have been started with ``start_new_session=True`` so that its PID is
    also its process-group id; the whole group is signalled so that grandchildren die too.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        # Signal the group even when the leader is gone: its children may still be alive.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    raise BrokerError(f"process {proc.pid} survived SIGKILL for 5 s")



def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie that nobody reaped yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state letter follows the parenthesised command name; Z is a zombie, X is dead.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")



class ManagedProcess:
    """A subprocess in its own session, output to a log file, stopped by process group.

    ``env`` is added on top of the current environment. Use as a context manager, or
    call :meth:`start` and :meth:`terminate`; stopping twice is harmless, and a process
    still running when the interpreter exits is terminated then.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        log_path: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.env = dict(env or {})
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._returncode: int | None = None

    @property
    def log_path(self) -> Path:
        """The file that receives the process's stdout and stderr."""
        if self._log_path is None:
            fd, path = tempfile.mkstemp(prefix=f"txstream-{self.name}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(path)
        return self._log_path

    @property
    def pid(self) -> int:
        """The process id (also its process-group id)."""
        if self._proc is None:
            raise RuntimeError(f"{self.name}: not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""
        if self._proc is not None:
            return self._proc.poll()
        return self._returncode

    def start(self) -> Self:
        """Launch the process; returns self so that ``ManagedProcess(argv).start()`` reads well."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name}: already started (pid {self._proc.pid})")
        env = {**os.environ, **self.env}
        # Python children would otherwise buffer their output and wait_for_log would stall.
        env.setdefault("PYTHONUNBUFFERED", "1")
        log_path = self.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                # Own session: signals go to its whole group, and a Ctrl-C meant for the
                # test run does not hit it before the fixture stops it in order.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        atexit.register(self.kill)
        return self

    def log_text(self) -> str:
        """Everything the process has printed so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The end of the log, for error messages."""
        return self.log_text()[-chars:]

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the log matches the regular expression ``pattern``; return the match.

        Raises WaitTimeout at the deadline, or at once if the process exits without
        having printed it, with the log's tail in the message.
        """
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            # Check the exit status before reading, so that output written just before
            # the exit is still seen by this final read.
            exited = self._proc is None or self._proc.poll() is not None
            match = regex.search(self.log_text())
            if match is not None:
                return match
            if exited:
                raise WaitTimeout(
                    f"{self.name} exited with status {self.returncode} before printing "
                    f"{pattern!r}; log tail:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"{self.name} did not print {pattern!r} within {timeout} s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; return the exit status.

        Idempotent: a stopped process returns its earlier status; None if never started.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return self._returncode
        atexit.unregister(self.kill)
        self._returncode = terminate_process_group(proc, timeout)
        return self._returncode

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash, for fault-injection tests).

        No SIGTERM first: a crash test must not give the process a chance to clean up.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return self._returncode
        atexit.unregister(self.kill)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._returncode = proc.wait()
        return self._returncode

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self._proc is not None else "stopped"
        return f"ManagedProcess({self.name!r}, {state})"
