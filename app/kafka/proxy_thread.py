"""ProxyThread: test proxies (TLS, SASL) on their own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Protocol, Self

__all__ = ["ProxyThread"]


class _Proxy(Protocol):
    port: int

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ProxyThread:
    """Runs ``proxies`` (started in order, stopped in reverse) on a loop in a daemon thread.

    The first proxy is the outer one: :attr:`port` is where clients connect.
    """

    def __init__(self, *proxies: _Proxy) -> None:
        self.proxies = proxies
        self._loop = asyncio.new_event_loop()
        # A client that fails its handshake or its login (the point of several tests) is
        # not an error of the proxy: asyncio would log each one with a traceback.
        self._loop.set_exception_handler(lambda _loop, _context: None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-proxy",
                                        daemon=True)

    @property
    def port(self) -> int:
        """Where clients connect."""
        return self.proxies[0].port

    def start(self) -> None:
        """Start the loop and the proxies; return once they listen."""
        self._thread.start()
        for proxy in reversed(self.proxies):  # inner first: the outer forwards to it
            asyncio.run_coroutine_threadsafe(proxy.start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Stop the proxies and their loop; idempotent."""
        if not self._thread.is_alive():
            return
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(proxy.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
