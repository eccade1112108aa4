"""A headless Chromium page driven over the DevTools protocol: navigate, run script, read logs.

Enough of the protocol to use a page as a person does (type into a form, press the
button, follow redirects, read what is shown) and to collect what the browser reports
(console errors, Content-Security-Policy violations).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from app.process import ManagedProcess
from app.testing import free_port

__all__ = ["Page"]


class Page:
    """One tab of a headless Chromium started for it (stopped by PID on exit)."""

    def __init__(self, chromium: str, profile: Path) -> None:
        self._port = free_port()
        self._process = ManagedProcess(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             f"--remote-debugging-port={self._port}", "about:blank"],
            log_path=profile.parent / "chromium.log", name="chromium")
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: Every ``Log.entryAdded`` and console message the page produced.
        self.log: list[str] = []

    async def __aenter__(self) -> Self:
        self._process.start()
        self._session = aiohttp.ClientSession()
        target = await self._first_page(deadline=time.monotonic() + 30)
        self._socket = await self._session.ws_connect(target, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self.send(f"{domain}.enable")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        self._process.terminate(timeout=10)

    async def _first_page(self, deadline: float) -> str:
        assert self._session is not None
        while True:
            try:
                async with self._session.get(f"http://127.0.0.1:{self._port}/json/list") as r:
                    pages = [t for t in await r.json() if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline or not self._process.running:
                message = f"chromium did not start: {self._process.log_tail(2000)}"
                raise RuntimeError(message)
            await asyncio.sleep(0.2)

    async def _read(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Log.entryAdded":
                entry = data["params"]["entry"]
                self.log.append(f"{entry['level']}: {entry['text']}")
            elif data.get("method") == "Runtime.consoleAPICalled":
                params = data["params"]
                text = " ".join(str(a.get("value", a.get("description", "")))
                                for a in params["args"])
                self.log.append(f"console.{params['type']}: {text}")
            elif data.get("method") == "Runtime.exceptionThrown":
                self.log.append(f"exception: {data['params']['exceptionDetails']}")

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command; its result (RuntimeError on a protocol error)."""
        assert self._socket is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._socket.send_str(json.dumps({"id": ident, "method": method,
                                                "params": params}))
        answer = await asyncio.wait_for(future, timeout=30)
        if "error" in answer:
            message = f"{method}: {answer['error']}"
            raise RuntimeError(message)
        result: dict[str, Any] = answer["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a script expression in the page (awaited if it is a promise)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            message = f"{expression!r} threw {result['exceptionDetails']}"
            raise RuntimeError(message)
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        """Open ``url`` (the page then loads and runs on its own)."""
        await self.send("Page.navigate", url=url)

    async def wait_for(self, expression: str, timeout: float, message: str) -> Any:
        """Poll ``expression`` until it is truthy (a page load may be in between)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = await self.evaluate(expression)
            except RuntimeError as exc:  # the page was navigating: its context went away
                last = exc
            else:
                if last:
                    return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"{message}: {expression} stayed {last!r} for {timeout} s")
