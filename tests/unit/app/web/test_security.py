"""The web guard without a broker: token, sessions, login form, headers, errors as JSON."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from app.compose import create_app
from app.settings import Settings
from app.web import login
from app.web.login import login_page, safe_next
from app.web.security import MAX_ECHO, SESSION_SECONDS, session_value, valid_session

TOKEN = "tok-0123456789abcdef-web"
METRICS = "tok-0123456789abcdef-metrics"
SECRET = SecretStr(TOKEN)

ClientFactory = Callable[..., Any]


@pytest.fixture
async def client_for(tmp_path: Path) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[Any, Any]] = []

    async def make(**settings: Any) -> TestClient[Any, Any]:
        app = create_app(Settings(broker="kafka://127.0.0.1:9", datadir=tmp_path / "data",
                                  **settings))
        client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token__data_is_open_and_headers_are_set(client_for: ClientFactory) -> None:
    client = await client_for()
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Strict-Transport-Security" not in response.headers
    login_off = await client.get("/login")
    assert login_off.status == 404
    assert (await login_off.json())["error"] == "no login: this server has no TXSTREAM_WEB_TOKEN"


@pytest.mark.parametrize("path", ["/openapi.json", "/stats/", "/alerts/", "/dashboard/",
                                  "/dashboard/data/", "/customers/1/windows/tumbling/",
                                  "/customers/1/sessions/", "/router/", "/table/tumbling/"])
async def test_token__every_data_view_answers_401_without_it(client_for: ClientFactory,
                                                             path: str) -> None:
    client = await client_for(web_token=TOKEN)
    for headers in ({}, _bearer("wrong-token-0123456789"), {"Authorization": TOKEN},
                    _bearer(TOKEN + "x"), _bearer(TOKEN[:-1])):
        response = await client.get(path, headers=headers, allow_redirects=False)
        assert response.status == 401, (path, headers)
        assert response.content_type == "application/json"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="txstream"'
        body = await response.json()
        assert body == {"error": "authentication required: send Authorization: Bearer <token> "
                                 "(TXSTREAM_WEB_TOKEN), or log in at /login", "status": 401}
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_token__the_right_one_opens(client_for: ClientFactory) -> None:
    client = await client_for(web_token=TOKEN)
    response = await client.get("/openapi.json", headers=_bearer(TOKEN))
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.")


async def test_probes_are_never_behind_the_token(client_for: ClientFactory) -> None:
    client = await client_for(web_token=TOKEN, metrics_token=METRICS)
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    ready = await client.get("/readyz")
    # Not started: no consumer has an assignment yet.
    assert ready.status == 503
    body = await ready.json()
    assert body["ready"] is False
    assert [c["name"] for c in body["checks"]] == ["assigned", "recovered", "consuming",
                                                    "broker"]
    assert body["reasons"][0].startswith("assigned: ")


async def test_metrics__open_unless_it_has_its_own_token(client_for: ClientFactory) -> None:
    open_metrics = await client_for(web_token=TOKEN)
    assert (await open_metrics.get("/metrics")).status != 401
    guarded = await client_for(web_token=TOKEN, metrics_token=METRICS)
    for headers in ({}, _bearer(TOKEN)):
        response = await guarded.get("/metrics", headers=headers)
        assert response.status == 401
        assert "TXSTREAM_METRICS_TOKEN" in (await response.json())["error"]
    assert (await guarded.get("/metrics", headers=_bearer(METRICS))).status != 401


async def test_a_browser_is_sent_to_the_login_page(client_for: ClientFactory) -> None:
    client = await client_for(web_token=TOKEN)
    response = await client.get("/dashboard/", headers={"Accept": "text/html,*/*"},
                                allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/dashboard/"


async def test_login_sets_a_session_cookie_that_opens_the_views(
        client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login, "FAILURE_DELAY", 0.0)
    client = await client_for(web_token=TOKEN)
    form = await client.get("/login?next=/stats/")
    assert form.status == 200
    page = await form.text()
    assert '<input type="hidden" name="next" value="/stats/">' in page
    policy = form.headers["Content-Security-Policy"]
    assert re.fullmatch(r"default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action "
                        r"'self'; frame-ancestors 'none'; base-uri 'none'", policy)

    wrong = await client.post("/login", data={"token": "not-the-token-at-all",
                                              "next": "/stats/"}, allow_redirects=False)
    assert wrong.status == 401
    assert "That token is not right." in await wrong.text()
    assert "Set-Cookie" not in wrong.headers

    right = await client.post("/login", data={"token": TOKEN, "next": "/openapi.json"},
                              allow_redirects=False)
    assert right.status == 303
    assert right.headers["Location"] == "/openapi.json"
    cookie = right.headers["Set-Cookie"]
    assert cookie.startswith("txstream_session=v1.")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", f"Max-Age={SESSION_SECONDS}"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP here; under HTTPS it is Secure
    assert TOKEN not in cookie
    value = right.cookies["txstream_session"].value

    opened = await client.get("/openapi.json", cookies={"txstream_session": value})
    assert opened.status == 200
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    refused = await client.get("/openapi.json", cookies={"txstream_session": forged})
    assert refused.status == 401

    out = await client.post("/logout", allow_redirects=False)
    assert out.status == 303
    assert "txstream_session=" in out.headers["Set-Cookie"]


async def test_login_from_another_site_is_refused(client_for: ClientFactory) -> None:
    client = await client_for(web_token=TOKEN)
    response = await client.post("/login", data={"token": TOKEN},
                                 headers={"Origin": "https://evil.example"},
                                 allow_redirects=False)
    assert response.status == 403
    assert "Set-Cookie" not in response.headers


async def test_get_with_a_body_is_refused(client_for: ClientFactory) -> None:
    client = await client_for()
    response = await client.get("/openapi.json", data=b"x" * 10)
    assert response.status == 400
    assert await response.json() == {"error": "a GET request takes no body", "status": 400}


async def test_long_query_string_is_refused(client_for: ClientFactory) -> None:
    client = await client_for()
    response = await client.get("/alerts/?limit=" + "9" * 2000)
    assert response.status == 414
    assert (await response.json())["status"] == 414


async def test_aiohttp_errors_are_json_and_echo_little(client_for: ClientFactory) -> None:
    client = await client_for()
    long_path = "/" + "a" * 3000
    missing = await client.get(long_path)
    assert missing.status == 404
    assert missing.content_type == "application/json"
    body = await missing.json()
    assert body["status"] == 404
    assert body["error"].startswith("no such endpoint: '/aaa")
    assert len(body["error"]) < MAX_ECHO + 60
    assert missing.headers["X-Content-Type-Options"] == "nosniff"

    wrong_method = await client.delete("/openapi.json")
    assert wrong_method.status == 405
    assert wrong_method.content_type == "application/json"
    assert "GET" in wrong_method.headers["Allow"]
    assert (await wrong_method.json())["error"].startswith("method 'DELETE' not allowed")


async def test_a_long_bad_parameter_is_echoed_cut(client_for: ClientFactory) -> None:
    client = await client_for()
    response = await client.get("/customers/" + "x" * 900 + "/sessions/")
    assert response.status == 400
    message = (await response.json())["error"]
    assert message.startswith("customer id must be a positive integer, got 'xxx")
    assert len(message) < MAX_ECHO + 60


def test_session_values() -> None:
    now = 1_800_000_000.0
    value = session_value(SECRET, now)
    assert valid_session(SECRET, value, now)
    assert valid_session(SECRET, value, now + SESSION_SECONDS - 1)
    assert not valid_session(SECRET, value, now + SESSION_SECONDS)  # expired
    assert not valid_session(SecretStr(TOKEN + "2"), value, now)  # the token changed
    version, expires, mac = value.split(".")
    assert not valid_session(SECRET, f"{version}.{int(expires) + 99999}.{mac}", now)
    for junk in ("", "v1", "v1..", "v2.1.2", "v1.x.y", None):
        assert not valid_session(SECRET, junk, now)


@pytest.mark.parametrize(("target", "expected"), [
    ("/stats/", "/stats/"), ("/dashboard/?x=1", "/dashboard/?x=1"), (None, "/dashboard/"),
    ("https://evil.example/", "/dashboard/"), ("//evil.example/", "/dashboard/"),
    ("/\\evil.example", "/dashboard/"), ("javascript:alert(1)", "/dashboard/"),
    ("/a\r\nSet-Cookie: x", "/dashboard/"),
])
def test_login_returns_only_to_this_server(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_login_page_escapes_what_it_echoes() -> None:
    page = login_page('/x"><script>alert(1)</script>', "bad <b>")
    assert "<script>" not in page
    assert "&lt;b&gt;" in page
