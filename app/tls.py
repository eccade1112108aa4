"""TLS of the web views: the server's context, and the client requests between workers use."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from .exceptions import SettingsError
from .settings import Settings

__all__ = ["peer_client_class", "web_client_context", "web_server_context"]


def web_server_context(settings: Settings) -> ssl.SSLContext | None:
    """The HTTPS server context (None: plain HTTP); SettingsError if the files do not load."""
    cert, key = settings.web_cert_file, settings.web_key_file
    if cert is None or key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        detail = ("the key does not belong to the certificate" if reason == "KEY_VALUES_MISMATCH"
                  else f"not a PEM certificate and its private key ({reason})")
        raise SettingsError(f"TXSTREAM_WEB_CERT_FILE / TXSTREAM_WEB_KEY_FILE: {detail}") from None
    return context


def web_client_context(settings: Settings) -> ssl.SSLContext | None:
    """What a worker trusts when it asks another over HTTPS (None: plain HTTP)."""
    if settings.web_cert_file is None:
        return None
    ca_file = settings.web_ca_file
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise SettingsError(f"TXSTREAM_WEB_CA_FILE={str(ca_file)!r}: no CA certificate in it "
                            f"({reason})") from None


def peer_client_class(context: ssl.SSLContext) -> type[aiohttp.ClientSession]:
    """Faust's ``HttpClient`` for requests between workers, verifying them with ``context``.

    Faust creates it lazily (inside the event loop), the first time a request is routed
    to the worker that owns a key, or the views ask the other workers for their part.
    """

    class PeerClient(aiohttp.ClientSession):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(connector=aiohttp.TCPConnector(ssl=context), **kwargs)

    return PeerClient
