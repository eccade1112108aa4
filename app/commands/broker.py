"""``txstream broker``: the embedded broker in the foreground, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from app.txapp import TxApp

from .usage import fail

__all__ = ["register", "wait_for_signal"]


async def wait_for_signal(alive: Callable[[], bool] = lambda: True,
                          every: float = 0.5) -> bool:
    """Return True on SIGINT or SIGTERM, or False as soon as ``alive()`` says no."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while alive():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
            return True
    return False


def register(app: TxApp) -> None:
    """Define the ``broker`` command on the app's CLI."""

    @app.command()
    async def broker(self: Any) -> None:
        """Run the embedded broker in the foreground and print its URL."""
        from app.kafka.broker import EmbeddedBroker

        embedded = EmbeddedBroker()
        embedded.start()
        print(embedded.url, flush=True)
        self.say("embedded broker (memory storage: it forgets everything when it stops);"
                 " Ctrl-C stops it")
        try:
            stopped = await wait_for_signal(lambda: embedded.running)
            if not stopped:
                fail("broker", f"the embedded broker (pid {embedded.pid}) exited on its own "
                               f"with status {embedded.returncode}; its log ends:\n"
                               f"{embedded.log_text()[-2000:] or '(empty)'}", 1)
        finally:
            embedded.stop()
