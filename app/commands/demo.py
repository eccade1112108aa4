"""The one-command demo: embedded broker, a worker and the generator, stopped together.

With ``--tls`` every Kafka connection is mutual TLS: a throwaway CA and certificates are
made in the demo's directory, a TLS-terminating proxy stands in front of the broker (the
embedded broker cannot serve TLS itself), and the broker advertises only the proxy.
"""

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
from app.kafka.tls_certs import TlsFiles, make_tls_files
from app.kafka.tls_proxy import TlsProxy, server_tls_context
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


#: The embedded broker knows no users: whatever the shell sets for SASL does not apply.
_NO_SASL = {f"TXSTREAM_KAFKA_{name}": "" for name in (
    "SASL_MECHANISM", "USERNAME", "PASSWORD", "PASSWORD_FILE")}
_PLAINTEXT = {**_NO_SASL, "TXSTREAM_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
              **{f"TXSTREAM_KAFKA_{name}_FILE": "" for name in ("CA", "CERT", "KEY")}}


def _tls_settings(workdir: Path) -> tuple[dict[str, str], TlsFiles]:
    """Throwaway certificates and the TXSTREAM_KAFKA_* settings of a mutual-TLS client."""
    files = make_tls_files(workdir / "tls", ca_name="txstream demo CA")
    return {
        **_NO_SASL,
        "TXSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
        "TXSTREAM_KAFKA_CA_FILE": str(files.ca),
        "TXSTREAM_KAFKA_CERT_FILE": str(files.client.cert),
        "TXSTREAM_KAFKA_KEY_FILE": str(files.client.key),
    }, files


async def run_demo(settings: Settings, *, rate: float, customers: int,
                   say: Callable[[str], None], tls: bool = False) -> int:
    """Run everything until Ctrl-C or SIGTERM, then stop it all and delete the demo state.

    Returns 0 after Ctrl-C or SIGTERM, 1 when the broker, the worker or the generator
    ended on its own (what it printed last is shown).
    """
    workdir = Path(tempfile.mkdtemp(prefix="txstream-demo-"))
    host = settings.web_host
    port = settings.web_port if _port_free(host, settings.web_port) else free_port()
    proxy: TlsProxy | None = None
    security = dict(_PLAINTEXT)
    if tls:
        security, files = _tls_settings(workdir)
        proxy_port = free_port()
        broker = EmbeddedBroker(log_path=workdir / "broker.log", advertised_port=proxy_port)
    else:
        broker = EmbeddedBroker(log_path=workdir / "broker.log")
    processes: list[ManagedProcess] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        broker.start()
        if tls:
            proxy = TlsProxy(broker.port, server_tls_context(
                files.server.cert, files.server.key, client_ca=files.ca), port=proxy_port)
            await proxy.start()
            say(f"embedded broker: {broker.url}, only through a TLS proxy that requires a "
                f"client certificate (the broker advertises nothing else)")
            say("Kafka security (every client: worker, generator, views):")
            for name, value in security.items():
                if value:
                    say(f"  {name}={value}")
        else:
            say(f"embedded broker: {broker.url}")
        env = {
            **security,
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
        # /readyz: never behind a web token, and 200 once the worker consumes.
        while not _answers(f"{base}/readyz"):
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
        if proxy is not None:
            await proxy.stop()
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
        option("--tls", is_flag=True, default=False,
               help="Every Kafka connection over mutual TLS (throwaway CA and certificates)."),
    )
    async def demo(self: Any, rate: float, customers: int, tls: bool) -> None:
        """Embedded broker + a worker + the generator; prints the dashboard URL."""
        await exit_with("demo", run_demo(app.settings, rate=rate, customers=customers,
                                         say=self.say, tls=tls))
