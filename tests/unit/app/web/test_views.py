"""Web layer without a broker: JSON 500s without tracebacks, the OpenAPI document, the page."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web import Request, Response, View

from app.compose import create_app
from app.settings import Settings
from app.txapp import TxApp
from app.web.dashboard import dashboard_html
from app.web.openapi import openapi_document
from app.web.views import install_error_handler, json_errors


def _failing_app(*, safe: bool) -> faust.App:
    app = faust.App(f"t{uuid.uuid4().hex[:8]}", autodiscover=False)

    @app.page("/boom/")
    class Boom(View):
        async def get(self, request: Request) -> Response:
            message = "secret detail: password=hunter2"
            raise RuntimeError(message)

    @app.page("/unreachable/")
    class Unreachable(View):
        async def get(self, request: Request) -> Response:
            message = "connect to 10.0.0.7:6066 refused"
            raise aiohttp.ClientConnectionError(message)

    @app.page("/fine/")
    class Fine(View):
        async def get(self, request: Request) -> Response:
            return self.json({"ok": True})

    if safe:
        install_error_handler(app)  # type: ignore[arg-type]
    return app


async def _get(app: faust.App, path: str) -> tuple[int, str, str]:
    async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
        response = await client.get(path)
        return response.status, response.content_type, await response.text()


async def test_unhandled_error__json_500_without_traceback_or_message() -> None:
    # Debug mode is when aiohttp's default 500 page would carry the traceback.
    asyncio.get_running_loop().set_debug(True)
    status, content_type, body = await _get(_failing_app(safe=True), "/boom/")
    assert (status, content_type) == (500, "application/json")
    assert body == '{"error": "internal error", "status": 500}'


async def test_default_behaviour__aiohttp_sends_the_traceback_in_debug_mode() -> None:
    # What the middleware protects against: without it, debug mode leaks everything.
    asyncio.get_running_loop().set_debug(True)
    status, content_type, body = await _get(_failing_app(safe=False), "/boom/")
    assert status == 500
    assert content_type != "application/json"
    assert "Traceback" in body and "hunter2" in body


async def test_unreachable_owner__json_503_without_details() -> None:
    status, content_type, body = await _get(_failing_app(safe=True), "/unreachable/")
    assert (status, content_type) == (503, "application/json")
    assert "10.0.0.7" not in body
    assert '"status": 503' in body


async def test_http_errors_and_normal_views_pass_through() -> None:
    app = _failing_app(safe=True)
    assert (await _get(app, "/fine/"))[:2] == (200, "application/json")
    assert (await _get(app, "/no/such/path/"))[0] == 404


@pytest.fixture
def tx_app(tmp_path: Path) -> Iterator[TxApp]:
    yield create_app(Settings(broker="kafka://127.0.0.1:9", datadir=tmp_path / "data"))


def test_create_app__every_view_is_behind_the_error_handler(tx_app: TxApp) -> None:
    assert json_errors in tx_app.web.web_app.middlewares  # type: ignore[attr-defined]


def test_create_app__web_server_binds_to_loopback_by_default(tx_app: TxApp) -> None:
    assert tx_app.conf.web_bind == "127.0.0.1"
    assert str(tx_app.conf.canonical_url) == "http://127.0.0.1:6066"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi__documents_exactly_the_app_views_with_examples(tx_app: TxApp) -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == set(tx_app.web.views)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], path
            for name in re.findall(r"{(\w+)}", path):
                assert name in {p["name"] for p in operation["parameters"]}, (path, name)
            if method != "get":
                continue
            ok = operation["responses"]["200"]
            for media, content in ok["content"].items():
                if media != "text/html" and path != "/openapi.json":
                    assert "example" in content or "examples" in content, path
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas


def test_dashboard_page__self_contained_with_its_script_pinned_by_hash() -> None:
    html, policy = dashboard_html()
    # Nothing from elsewhere: no external scripts, styles, fonts, images or links.
    assert re.findall(r"https?://", html) == ["http://"]  # the SVG namespace, not a request
    assert "http://www.w3.org/2000/svg" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!/|data:)""", html)
    assert "@import" not in html and "url(http" not in html
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    assert len(styles) == 1
    assert not re.search(r"\sstyle\s*=", html), "no style attribute (the policy would block it)"
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "innerHTML" not in html  # data only ever becomes text nodes
