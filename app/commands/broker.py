"""``txstream broker``: the embedded broker in the foreground, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from app.txapp import TxApp

__all__ = ["register", "wait_for_signal"]


async def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


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
            await wait_for_signal()
        finally:
            embedded.stop()
