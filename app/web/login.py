"""The login page: a person types the web token once and gets a session cookie.

A browser cannot add ``Authorization: Bearer`` to a page it opens, so ``GET /login``
serves a form that POSTs the token; on a match, the answer sets an ``HttpOnly``,
``SameSite=Strict`` session cookie (``Secure`` under HTTPS) and sends the browser on to
the page it wanted. The cookie holds no token, only an expiry signed with it
(:func:`app.web.security.session_value`). ``POST /logout`` ends the session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import re
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from aiohttp import web
from faust.web import Request, View
from yarl import URL

from .security import (
    LOGIN_PATH,
    LOGOUT_PATH,
    SESSION_COOKIE,
    SESSION_SECONDS,
    json_error,
    session_value,
)

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = ["install_login", "login_page", "safe_next"]

#: Where a login goes when the request names no page.
DEFAULT_NEXT = "/dashboard/"
#: A failed login answers after this long, so guessing tokens over HTTP is slow.
FAILURE_DELAY = 1.0
#: Largest login form accepted (bytes).
MAX_FORM = 4096

_STYLE = """
body { font: 15px/1.5 system-ui, "DejaVu Sans", sans-serif; background: #f3f5f9; color: #172033;
       display: flex; min-height: 100vh; margin: 0; align-items: center; justify-content: center; }
form { background: #fff; border: 1px solid #e4e7ec; border-radius: 10px; padding: 24px 28px;
       width: 340px; }
h1 { font-size: 19px; margin: 0 0 14px; }
label { display: block; font-size: 13px; color: #667085; margin-bottom: 4px; }
input[type=password] { width: 100%; box-sizing: border-box; padding: 8px; font: inherit;
                       border: 1px solid #c9d1de; border-radius: 6px; }
button { margin-top: 14px; width: 100%; padding: 9px; font: inherit; color: #fff;
         background: #2f6fe4; border: 0; border-radius: 6px; cursor: pointer; }
.error { color: #b42318; font-size: 13px; margin: 10px 0 0; }
"""


@cache
def _policy() -> str:
    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    # The page's one inline style, by hash; the form may only post here.
    return (f"default-src 'none'; style-src 'sha256-{digest}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


def safe_next(target: str | None) -> str:
    """The page to go to after logging in: a path on this server, never another site."""
    if not target or len(target) > 1024 or not target.startswith("/") or target.startswith("//"):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or re.search(r"[\x00-\x1f]", target):
        return DEFAULT_NEXT
    return target


def login_page(next_path: str, error: str | None = None) -> str:
    """The form, posting the token to ``/login`` with the page to return to."""
    message = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>txstream · log in</title>
<style>{_STYLE}</style>
</head>
<body>
<form method="post" action="{LOGIN_PATH}" id="login">
<h1>txstream</h1>
<label for="token">Access token (TXSTREAM_WEB_TOKEN)</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<button type="submit">Log in</button>
{message}
</form>
</body>
</html>
"""


def _same_origin(request: web.Request) -> bool:
    """A form posted from another site carries its Origin; refuse it (no login CSRF)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return bool(URL(origin).raw_authority == request.host)


def install_login(app: TxApp) -> None:
    """Serve ``GET``/``POST /login`` and ``POST /logout`` (only when a web token is set)."""
    token = app.settings.web_token
    secure = app.settings.web_cert_file is not None

    def page(view: View, next_path: str, status: int = 200,
             error: str | None = None) -> Any:
        # same-origin: the browser then sends the Origin of the form's POST (with
        # no-referrer it would send "null"), which the POST checks.
        return view.html(login_page(next_path, error), status=status,
                         headers={"Content-Security-Policy": _policy(),
                                  "Referrer-Policy": "same-origin"})

    @app.page(LOGIN_PATH)
    class LoginView(View):
        """The login form, and the token it posts."""

        async def get(self, request: Request) -> Any:
            if token is None:
                return json_error(404, "no login: this server has no TXSTREAM_WEB_TOKEN")
            return page(self, safe_next(request.query.get("next")))

        async def post(self, faust_request: Request) -> Any:
            request = cast(web.Request, faust_request)
            if token is None:
                return json_error(404, "no login: this server has no TXSTREAM_WEB_TOKEN")
            if not _same_origin(request):
                return json_error(403, "a login form posted from another site")
            if request.content_length is None or request.content_length > MAX_FORM:
                return json_error(413, f"a login form has at most {MAX_FORM} bytes")
            form = await request.post()
            given, wanted = str(form.get("token", "")), token.get_secret_value()
            next_path = safe_next(str(form.get("next", "")))
            if not _equal(given, wanted):
                await asyncio.sleep(FAILURE_DELAY)
                return page(self, next_path, 401, "That token is not right.")
            response = web.Response(status=303, headers={"Location": next_path})
            response.set_cookie(SESSION_COOKIE, session_value(token), max_age=SESSION_SECONDS,
                                path="/", httponly=True, samesite="Strict", secure=secure)
            return response

    @app.page(LOGOUT_PATH)
    class LogoutView(View):
        """End the session (the cookie is cleared)."""

        async def post(self, request: Request) -> Any:
            response = web.Response(status=303, headers={"Location": LOGIN_PATH})
            response.del_cookie(SESSION_COOKIE, path="/")
            return response


def _equal(given: str, wanted: str) -> bool:
    # Constant time: the comparison reveals nothing of the token.
    return hmac.compare_digest(given.encode(), wanted.encode())
