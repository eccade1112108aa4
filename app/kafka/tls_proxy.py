"""TlsProxy: a TLS-terminating TCP proxy in front of the embedded broker (tests, demo --tls).

The embedded Tansu cannot serve TLS itself (BROKER.md fact 13). Started with
``--advertised-listener-url`` set to this proxy's address, the broker tells every client
to connect here, so every Kafka connection (bootstrap, metadata, fetches, the group
coordinator) is TLS between the client and the proxy, and plaintext only on loopback
between the proxy and the broker. With a client CA the proxy requires a client
certificate (mutual TLS), as a broker with ``ssl.client.auth=required`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

from .listener import CHUNK, Listener, forward
from .proxy_thread import ProxyThread

__all__ = ["TlsProxy", "TlsProxyThread", "server_tls_context"]

logger = logging.getLogger(__name__)

_HANDSHAKE_TIMEOUT = 10.0


def server_tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server-side TLS context; with ``client_ca``, client certificates are required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return context


class _TlsSession:
    """One client's TLS, run over plain TCP streams with memory BIOs.

    asyncio's own TLS transport closes a connection whose handshake fails without
    sending the TLS alert, so a client would only see a closed connection; a broker
    (Java's TLS) sends the alert ("certificate required", "unknown CA"), and so does
    this: whatever OpenSSL has to send is flushed, the alert included.
    """

    def __init__(self, context: ssl.SSLContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._reader = reader
        self._writer = writer

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _fill(self) -> bool:
        """Read more TLS bytes from the client; False at EOF."""
        data = await self._reader.read(CHUNK)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def handshake(self) -> bool:
        """Complete the server handshake; False (alert sent) if it fails."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return False
                continue
            except (ssl.SSLError, OSError):
                with contextlib.suppress(Exception):
                    await self._flush()  # the alert, so the client learns why
                return False
            await self._flush()
            return True

    async def receive(self) -> bytes:
        """Plaintext from the client; b"" at the end."""
        while True:
            try:
                data = self._tls.read(CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()  # e.g. TLS 1.3 session tickets, key updates
                if not await self._fill():
                    return b""
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLError):
                with contextlib.suppress(Exception):
                    await self._flush()
                return b""
            await self._flush()
            return data

    async def send(self, data: bytes) -> None:
        """Encrypt ``data`` to the client."""
        self._tls.write(data)
        await self._flush()


async def _to_client(reader: asyncio.StreamReader, session: _TlsSession,
                     client: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            await session.send(data)
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        # The broker hung up: so does the proxy (a client waiting for an answer must see it).
        client.close()


class TlsProxy(Listener):
    """Accepts TLS on ``127.0.0.1:port`` and forwards each connection to ``upstream``.

    The TLS handshake of each connection is bounded.
    """

    def __init__(self, upstream_port: int, context: ssl.SSLContext, *, port: int | None = None,
                 host: str = "127.0.0.1", upstream_host: str = "127.0.0.1") -> None:
        super().__init__(port=port, host=host)
        self.upstream = (upstream_host, upstream_port)
        self._context = context
        #: Connections accepted (after the TLS handshake), for tests that prove use.
        self.connections = 0

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            session = _TlsSession(self._context, client_reader, client_writer)
            try:
                async with asyncio.timeout(_HANDSHAKE_TIMEOUT):
                    shaken = await session.handshake()
            except TimeoutError:
                shaken = False
            if not shaken:
                return
            self.connections += 1
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._writers.add(upstream_writer)
            try:
                await asyncio.gather(forward(session.receive, upstream_writer),
                                     _to_client(upstream_reader, session, client_writer))
            finally:
                self._writers.discard(upstream_writer)
                upstream_writer.close()
        finally:
            self._writers.discard(client_writer)
            client_writer.close()


class TlsProxyThread(ProxyThread):
    """A :class:`TlsProxy` on its own event loop in a daemon thread (for synchronous code)."""

    def __init__(self, upstream_port: int, context: ssl.SSLContext, *,
                 port: int | None = None) -> None:
        self.proxy = TlsProxy(upstream_port, context, port=port)
        super().__init__(self.proxy)
