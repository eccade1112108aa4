"""SaslProxy: Kafka's SASL server side (SCRAM-SHA-256/512, PLAIN) in front of the embedded broker.

For tests only. The embedded Tansu cannot authenticate anyone (its memory storage keeps no
SCRAM credentials, and this build has no other storage: BROKER.md fact 13), so this proxy
answers the SASL part of the Kafka protocol itself, as Apache Kafka's broker does, then
pipes bytes: ``ApiVersions`` goes to the broker, ``SaslHandshake`` and ``SaslAuthenticate``
(v0/v1, what aiokafka sends) are answered here with a real RFC 5802 SCRAM exchange (the
server proves it knows the password too) or RFC 4616 PLAIN; a failed login gets Kafka's
error 58 and its message; anything else before authenticating closes the connection.
Put a :class:`~app.kafka.tls_proxy.TlsProxy` in front of it for SASL_SSL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from .listener import CHUNK, Listener, forward

__all__ = ["MECHANISMS", "SaslProxy", "ScramUser"]

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
_HASHES: dict[str, Callable[..., hashlib._Hash]] = {
    "SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
_ITERATIONS = 4096
#: Kafka API keys and error codes the proxy speaks.
_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_UNSUPPORTED_SASL_MECHANISM, _SASL_AUTHENTICATION_FAILED = 33, 58
_MAX_FRAME = 1 << 20


@dataclass(frozen=True)
class ScramUser:
    """What a broker stores of a SCRAM user: salt and derived keys, never the password."""

    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: str, mechanism: str) -> ScramUser:
        """Salt and hash ``password`` as ``kafka-configs --add-config SCRAM-...`` does."""
        h = _HASHES[mechanism]
        salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac(h().name, password.encode(), salt, _ITERATIONS)
        client_key = hmac.new(salted, b"Client Key", h).digest()
        return cls(salt, h(client_key).digest(), hmac.new(salted, b"Server Key", h).digest())


def _failure(mechanism: str) -> str:
    # Apache Kafka's own message: it does not say whether the user exists.
    return ("Authentication failed during authentication due to invalid credentials with SASL "
            f"mechanism {mechanism}")


class _Scram:
    """One SCRAM server exchange (RFC 5802): two client messages, two answers."""

    def __init__(self, mechanism: str, users: Mapping[tuple[str, str], ScramUser]) -> None:
        self.mechanism = mechanism
        self.h = _HASHES[mechanism]
        self.users = users
        self.user: ScramUser | None = None
        self.first_bare = self.server_first = self.nonce = self.gs2 = ""

    def step(self, message: bytes) -> tuple[bool, bytes | str, bool]:
        """``(ok, answer or error message, done)`` for the client's next message."""
        text = message.decode("utf-8", errors="replace")
        if self.user is None:
            return self._first(text)
        return self._final(text)

    def _first(self, text: str) -> tuple[bool, bytes | str, bool]:
        parts = text.split(",", 2)
        if len(parts) != 3:
            return False, _failure(self.mechanism), True
        self.gs2, self.first_bare = f"{parts[0]},{parts[1]},", parts[2]
        attributes = dict(item.split("=", 1) for item in self.first_bare.split(",") if "=" in item)
        name = attributes.get("n", "").replace("=2C", ",").replace("=3D", "=")
        user = self.users.get((self.mechanism, name))
        if user is None or "r" not in attributes:
            return False, _failure(self.mechanism), True
        self.user = user
        self.nonce = attributes["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = (f"r={self.nonce},s={base64.b64encode(user.salt).decode()},"
                             f"i={_ITERATIONS}")
        return True, self.server_first.encode(), False

    def _final(self, text: str) -> tuple[bool, bytes | str, bool]:
        assert self.user is not None
        without_proof, _, proof = text.rpartition(",p=")
        attributes = dict(item.split("=", 1) for item in without_proof.split(",") if "=" in item)
        channel = base64.b64encode(self.gs2.encode()).decode()
        if attributes.get("r") != self.nonce or attributes.get("c") != channel:
            return False, _failure(self.mechanism), True
        auth_message = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        signature = hmac.new(self.user.stored_key, auth_message, self.h).digest()
        try:
            client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature,
                                                     strict=True))
        except ValueError:
            return False, _failure(self.mechanism), True
        if not hmac.compare_digest(self.h(client_key).digest(), self.user.stored_key):
            return False, _failure(self.mechanism), True
        server_signature = hmac.new(self.user.server_key, auth_message, self.h).digest()
        return True, b"v=" + base64.b64encode(server_signature), True


class _Plain:
    """One PLAIN exchange (RFC 4616): authzid NUL user NUL password."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self.passwords = passwords

    def step(self, message: bytes) -> tuple[bool, bytes | str, bool]:
        parts = message.decode("utf-8", errors="replace").split("\x00")
        if len(parts) == 3 and parts[1] in self.passwords and hmac.compare_digest(
                self.passwords[parts[1]].encode(), parts[2].encode()):
            return True, b"", True
        return False, "Authentication failed: Invalid username or password", True


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    if not 0 < size <= _MAX_FRAME:
        raise ConnectionError("bad frame size before authentication")
    return await reader.readexactly(size)


async def _send_frame(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(struct.pack(">i", len(payload)) + payload)
    await writer.drain()


class SaslProxy(Listener):
    """Authenticates each connection with SASL, then forwards it to the broker."""

    def __init__(self, upstream_port: int, users: Mapping[str, str], *,
                 port: int | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(port=port, host=host)
        self.upstream = ("127.0.0.1", upstream_port)
        self._passwords = dict(users)
        self._scram = {(mechanism, name): ScramUser.derive(password, mechanism)
                       for mechanism in _HASHES for name, password in users.items()}
        #: Logins that succeeded and failed, by user name (what a test can check).
        self.logins: list[tuple[str, bool]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            upstream = await asyncio.open_connection(*self.upstream)
            self._writers.add(upstream[1])
            if await self._authenticate(reader, writer, *upstream):
                await asyncio.gather(forward(partial(reader.read, CHUNK), upstream[1]),
                                     forward(partial(upstream[0].read, CHUNK), writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, struct.error):
            pass
        finally:
            for stream in (writer, upstream[1] if upstream else None):
                if stream is not None:
                    self._writers.discard(stream)
                    stream.close()

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            up_reader: asyncio.StreamReader,
                            up_writer: asyncio.StreamWriter) -> bool:
        """Run the client's SASL exchange; True once it has logged in."""
        exchange: _Scram | _Plain | None = None
        user = ""
        while True:
            request = await _read_frame(reader)
            api_key, version, correlation = struct.unpack_from(">hhi", request, 0)
            (client_id_size,) = struct.unpack_from(">h", request, 8)
            body = 10 + max(client_id_size, 0)
            if api_key == _API_VERSIONS:
                await _send_frame(up_writer, request)
                await _send_frame(writer, await _read_frame(up_reader))
            elif api_key == _SASL_HANDSHAKE and version in (0, 1):
                (size,) = struct.unpack_from(">h", request, body)
                mechanism = request[body + 2:body + 2 + size].decode()
                known = mechanism in MECHANISMS
                answer = struct.pack(">ih", correlation, 0 if known else
                                     _UNSUPPORTED_SASL_MECHANISM)
                answer += struct.pack(">i", len(MECHANISMS)) + b"".join(
                    _string(m) for m in MECHANISMS)
                await _send_frame(writer, answer)
                if not known or version == 0:  # v0 sends raw tokens: not Kafka's framing
                    return False
                exchange = (_Plain(self._passwords) if mechanism == "PLAIN"
                            else _Scram(mechanism, self._scram))
            elif api_key == _SASL_AUTHENTICATE and version in (0, 1) and exchange is not None:
                (size,) = struct.unpack_from(">i", request, body)
                token = request[body + 4:body + 4 + size]
                if not user:
                    user = _user_of(token)
                ok, reply, done = exchange.step(token)
                payload = reply if isinstance(reply, bytes) else b""
                response = struct.pack(">ih", correlation, 0 if ok else
                                       _SASL_AUTHENTICATION_FAILED)
                response += _string(None if ok else str(reply))
                response += struct.pack(">i", len(payload)) + payload
                if version >= 1:
                    response += struct.pack(">q", 0)  # session lifetime: unlimited
                await _send_frame(writer, response)
                if not ok or done:
                    self.logins.append((user, ok))
                    return ok
            else:
                return False  # anything else before authenticating: hang up, as Kafka does


def _user_of(token: bytes) -> str:
    """The user name in a first SCRAM message (``n,,n=alice,r=…``) or a PLAIN token."""
    text = token.decode("utf-8", errors="replace")
    if "\x00" in text:
        parts = text.split("\x00")
        return parts[1] if len(parts) > 1 else ""
    for item in text.split(","):
        if item.startswith("n="):
            return item[2:].replace("=2C", ",").replace("=3D", "=")
    return ""
