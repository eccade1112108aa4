"""Unit tests of the shipped test helpers: polling with a deadline and managed processes."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from app.process import ManagedProcess
from app.testing import WaitTimeout, async_wait_until, process_alive, wait_until

IGNORES_SIGTERM = (
    "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)
SLEEPS = "import time; print('up', flush=True); time.sleep(60)"
# Starts a grandchild in the same process group, prints its pid, then sleeps.
SPAWNS_GRANDCHILD = (
    "import subprocess,sys,time; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print('grandchild', p.pid, flush=True); time.sleep(60)"
)




def _python(code: str, tmp_path: Path) -> ManagedProcess:
    return ManagedProcess(
        [sys.executable, "-c", code], log_path=tmp_path / "child.log", name="child"
    )


# --- wait_until ------------------------------------------------------------------


def test_wait_until_returns_first_accepted_value() -> None:
    calls = iter([None, False, 0])
    # 0 is an answer: only None and False mean "not yet".
    assert wait_until(lambda: next(calls), timeout=5, interval=0.01) == 0


def test_wait_until_raises_with_message_at_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="broker never came up") as info:
        wait_until(lambda: None, timeout=0.3, interval=0.05, message="broker never came up")
    assert 0.3 <= time.monotonic() - started < 2
    assert isinstance(info.value, AssertionError)
    assert isinstance(info.value, TimeoutError)


def test_wait_until_propagates_predicate_errors() -> None:
    def boom() -> None:
        raise ValueError("bad predicate")

    with pytest.raises(ValueError, match="bad predicate"):
        wait_until(boom, timeout=1)


async def test_async_wait_until_accepts_async_and_sync_predicates() -> None:
    state = {"n": 0}

    async def ready() -> str | None:
        state["n"] += 1
        return "done" if state["n"] >= 3 else None

    assert await async_wait_until(ready, timeout=5, interval=0.01) == "done"
    assert await async_wait_until(lambda: 42, timeout=1) == 42


async def test_async_wait_until_raises_at_deadline() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(WaitTimeout, match="never ready"):
        await async_wait_until(never, timeout=0.2, interval=0.05, message="never ready")


# --- ManagedProcess --------------------------------------------------------------


def test_terminate_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    proc = _python(IGNORES_SIGTERM, tmp_path).start()
    proc.wait_for_log(r"^up$", timeout=10)
    pid = proc.pid
    started = time.monotonic()
    code = proc.terminate(timeout=0.5)
    elapsed = time.monotonic() - started
    assert code == -signal.SIGKILL
    assert 0.5 <= elapsed < 5, elapsed
    assert not process_alive(pid)
    # Idempotent: a second stop returns the same status without signalling anyone.
    assert proc.terminate() == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL


def test_terminate_is_quick_for_a_process_that_honours_sigterm(tmp_path: Path) -> None:
    with _python(SLEEPS, tmp_path) as proc:
        proc.wait_for_log("up", timeout=10)
        started = time.monotonic()
        assert proc.terminate(timeout=10) == -signal.SIGTERM
        assert time.monotonic() - started < 2
    assert not proc.running


def test_terminate_stops_the_whole_process_group(tmp_path: Path) -> None:
    with _python(SPAWNS_GRANDCHILD, tmp_path) as proc:
        grandchild = int(proc.wait_for_log(r"^grandchild (\d+)$", timeout=10)[1])
        assert process_alive(grandchild)
    # The grandchild is reparented and reaped elsewhere: poll until it is gone.
    wait_until(lambda: not process_alive(grandchild), timeout=5, message="grandchild still alive")


def test_kill_is_immediate_sigkill(tmp_path: Path) -> None:
    proc = _python(IGNORES_SIGTERM, tmp_path).start()
    proc.wait_for_log("up", timeout=10)
    started = time.monotonic()
    assert proc.kill() == -signal.SIGKILL
    assert time.monotonic() - started < 2
    assert proc.terminate() == -signal.SIGKILL


def test_wait_for_log_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    proc = _python("print('something else'); raise SystemExit(3)", tmp_path).start()
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="exited with status 3") as info:
        proc.wait_for_log("ready", timeout=30)
    assert time.monotonic() - started < 10
    assert "something else" in str(info.value)  # the log tail is in the message
    assert proc.terminate() == 3


def test_env_and_cwd_reach_the_child(tmp_path: Path) -> None:
    code = "import os; print(os.environ['TXSTREAM_PROBE'], os.getcwd(), flush=True)"
    proc = ManagedProcess(
        [sys.executable, "-c", code],
        env={"TXSTREAM_PROBE": "hello"},
        cwd=tmp_path,
        log_path=tmp_path / "env.log",
    )
    with proc:
        proc.wait_for_log("hello", timeout=10)
        # The child exits on its own after printing; leaving the block before that would
        # terminate it (a loaded machine showed -15 here).
        wait_until(lambda: not proc.running, timeout=10, message="the child did not exit")
    assert proc.log_text().strip() == f"hello {tmp_path}"
    assert proc.returncode == 0
