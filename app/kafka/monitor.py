"""BrokerMonitor: whether the broker answers, probed every second; outages timed and counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from .security import KafkaConnection

__all__ = ["BrokerMonitor", "OnReturn"]

logger = logging.getLogger(__name__)

#: Called when the broker answers again after an outage, with the topics it now lists.
OnReturn = Callable[[set[str]], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


class BrokerMonitor:
    """Asks the broker for its metadata every ``interval`` seconds, on a connection of its own.

    The clients of a worker retry on their own when the broker goes away (and log about
    it), but nothing says whether the broker answers now: this does, for ``/stats/``,
    ``/metrics`` and the readiness probe. A probe that gets no answer within ``timeout``
    (a stopped broker holds connections open) or cannot connect starts an outage; the
    first answer ends it, and ``on_return`` is told which topics the broker has then, so
    the worker can check that what its state depends on is still there.
    """

    def __init__(self, kafka: KafkaConnection, *, interval: float = 1.0, timeout: float = 3.0,
                 on_return: OnReturn | None = None) -> None:
        self.hosts = [self._host_port(server) for server in kafka.bootstrap.split(",")]
        self.interval = interval
        self.timeout = timeout
        self.on_return = on_return
        #: The same TLS and SASL as every other client.
        self.client = kafka.security_kwargs()
        #: None until the first probe has answered or failed.
        self.reachable: bool | None = None
        #: When the current state began (wall ms).
        self.since_ms: int | None = None
        self.outages = 0
        self.last_error: str | None = None

    @staticmethod
    def _host_port(server: str) -> tuple[str, int]:
        host, _, port = server.strip().rpartition(":")
        return host.strip("[]"), int(port)

    def snapshot(self, now_ms: int | None = None) -> dict[str, Any]:
        """Plain JSON-ready state: reachable, since when, outages so far, the last error."""
        now_ms = _now_ms() if now_ms is None else now_ms
        return {
            "reachable": self.reachable,
            "since_ms": self.since_ms,
            "for_seconds": None if self.since_ms is None else (now_ms - self.since_ms) / 1000,
            "outages": self.outages,
            "last_error": self.last_error,
        }

    async def probe(self) -> set[str]:
        """The topics the broker lists now; raises on no answer within the timeout."""
        errors = []
        for host, port in self.hosts:
            try:
                async with asyncio.timeout(self.timeout):
                    conn = await create_conn(host, port, request_timeout_ms=int(
                        self.timeout * 1000), **self.client)
                    try:
                        # None: every topic (naming one would make some brokers create it).
                        metadata = await conn.send(MetadataRequest(None))
                    finally:
                        conn.close()
            except (OSError, TimeoutError, Exception) as exc:  # any failure is "no answer"
                errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            return {topic[1] for topic in metadata.topics}
        raise ConnectionError("; ".join(errors))

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        """Probe once and update the state (and tell ``on_return`` when an outage ends)."""
        try:
            topics = await self.probe()
        except Exception as exc:
            self.last_error = str(exc)[:300]
            if self.reachable is not False:
                if self.reachable is True:
                    self.outages += 1
                    logger.warning("the broker does not answer (%s); the worker keeps its state "
                                   "and goes on when it is back", self.last_error)
                self.reachable = False
                self.since_ms = _now_ms()
            return
        was_down = self.reachable is False
        if self.reachable is not True:
            self.reachable = True
            self.since_ms = _now_ms()
        if was_down:
            logger.warning("the broker answers again")
            if self.on_return is not None:
                await self.on_return(topics)
