"""Listener: a loopback TCP server that knows its open connections (the test proxies' base)."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from app.process import free_port

__all__ = ["CHUNK", "Listener", "forward"]

#: Bytes read from a connection at a time.
CHUNK = 256 * 1024


async def forward(receive: Callable[[], Awaitable[bytes]],
                  writer: asyncio.StreamWriter) -> None:
    """Write what ``receive`` returns to ``writer`` until it returns nothing or the
    connection breaks, then end ``writer``'s side of the stream."""
    try:
        while data := await receive():
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()


class Listener(ABC):
    """Listens on ``host:port``; :meth:`stop` also closes every connection still open.

    A subclass serves each connection in :meth:`_serve` and registers the writers it
    opens in ``_writers`` (the client's and any upstream one), so that a stop ends them.
    """

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  reuse_address=True)

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=5)

    @abstractmethod
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection."""
