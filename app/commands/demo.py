"""The one-command demo: embedded broker, a worker and the generator, stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faust.cli import option

from app.exceptions import BrokerError
from app.kafka.broker import EmbeddedBroker
from app.process import ManagedProcess, free_port
from app.settings import Settings
from app.txapp import TxApp

from .usage import exit_with

__all__ = ["register", "run_demo"]


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def run_demo(settings: Settings, *, rate: float, customers: int,
                   say: Callable[[str], None]) -> int:
    """Run everything until Ctrl-C or SIGTERM, then stop it all and delete the demo state.

    Returns 0 after Ctrl-C or SIGTERM, 1 when the broker, the worker or the generator
    ended on its own (what it printed last is shown).
    """
    workdir = Path(tempfile.mkdtemp(prefix="txstream-demo-"))
    host = settings.web_host
    port = settings.web_port if _port_free(host, settings.web_port) else free_port()
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    processes: list[ManagedProcess] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        broker.start()
        say(f"embedded broker: {broker.url}")
        env = {
            "TXSTREAM_BROKER": broker.url,
            "TXSTREAM_EMBEDDED_BROKER": "true",
            "TXSTREAM_SESSION_TIMEOUT": "4s",
            "TXSTREAM_DATADIR": str(workdir / "data"),
            "TXSTREAM_WEB_HOST": host,
            "TXSTREAM_WEB_PORT": str(port),
            "TXSTREAM_IDLE_TIMEOUT": "10s",
        }
        worker = ManagedProcess([sys.executable, "-m", "app", "worker", "-l", "info"], env=env,
                                log_path=workdir / "worker.log", name="worker").start()
        processes.append(worker)
        base = f"http://{host}:{port}"
        say(f"worker starting (log: {worker.log_path})")
        while not _answers(f"{base}/stats/"):
            if not worker.running:
                raise BrokerError(f"the worker exited; its log ends:\n{worker.log_tail(3000)}")
            if not broker.running:
                raise BrokerError(_broker_died(broker))
            if stop.is_set():
                return 0
            await asyncio.sleep(0.5)
        generator = ManagedProcess(
            [sys.executable, "-m", "app", "produce", "--rate", str(rate), "--customers",
             str(customers), "--tunnel-every", "2000", "--max-delay", "3s"],
            env=env, log_path=workdir / "generator.log", name="generator").start()
        processes.append(generator)
        say(f"generator: {rate:g} transactions/s over {customers} customers")
        say(f"dashboard:  {base}/dashboard/")
        say(f"stats:      {base}/stats/   alerts: {base}/alerts/")
        say(f"a customer: {base}/customers/1/windows/tumbling/")
        say("Ctrl-C stops everything")
        code = 0
        while not stop.is_set():
            if not broker.running:
                say(_broker_died(broker))
                code = 1
                break
            for process in processes:
                if not process.running:
                    say(f"{process.name} exited unexpectedly with status {process.returncode}; "
                        f"its log ends:\n{process.log_tail(3000)}")
                    code = 1
                    stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        return code
    finally:
        say("stopping generator, worker and broker...")
        for process in reversed(processes):
            process.terminate(timeout=15)
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        say("stopped")


def _broker_died(broker: EmbeddedBroker) -> str:
    return (f"the embedded broker exited on its own (status {broker.returncode}); its log "
            f"ends:\n{broker.log_text()[-2000:] or '(empty)'}")


def register(app: TxApp) -> None:
    """Define the ``demo`` command on the app's CLI."""

    @app.command(
        option("--rate", type=float, default=50.0, show_default=True,
               help="Generator events per second."),
        option("--customers", type=int, default=200, show_default=True),
    )
    async def demo(self: Any, rate: float, customers: int) -> None:
        """Embedded broker + a worker + the generator; prints the dashboard URL."""
        await exit_with("demo", run_demo(app.settings, rate=rate, customers=customers,
                                         say=self.say))
