"""Web security: the bearer token and login sessions, security headers, errors as JSON.

Every request passes :func:`guard` (an aiohttp middleware, outermost): a GET with a body,
an over-long query string and, when ``TXSTREAM_WEB_TOKEN`` is set, a request without the
token or a login session are refused before any view runs; aiohttp's own errors (404,
405, 413) become JSON; and every response gets the security headers
(:func:`add_security_headers`, on ``on_response_prepare``, so that errors get them too).

Public, whatever the token: the probes (``/healthz``, ``/readyz``), the login page, and
``/metrics`` unless ``TXSTREAM_METRICS_TOKEN`` guards it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import SecretStr
from yarl import URL

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = [
    "LOGIN_PATH",
    "MAX_ECHO",
    "MAX_QUERY",
    "PUBLIC_PATHS",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "WebGuard",
    "add_security_headers",
    "bearer_token",
    "install_security",
    "json_error",
    "session_value",
    "shown",
    "valid_session",
]

logger = logging.getLogger(__name__)

#: Longest repr of a request's text any error message shows.
MAX_ECHO = 100
#: Longest query string accepted (characters); the views take one or two short parameters.
MAX_QUERY = 1024
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
METRICS_PATH = "/metrics"
#: Never behind the token: an orchestrator probes them, a person logs in there.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", LOGIN_PATH, LOGOUT_PATH})
SESSION_COOKIE = "txstream_session"
#: How long a login lasts.
SESSION_SECONDS = 12 * 3600
_SESSION_VERSION = "v1"
_REALM = 'Bearer realm="txstream"'

#: Headers every response carries (HTML and JSON alike).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: For responses that set no policy of their own (JSON, text): nothing may run or load.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def shown(value: object) -> str:
    """``repr(value)`` cut to :data:`MAX_ECHO` characters: what an error may echo."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def json_error(status: int, message: str, *,
               headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": message, "status": status}``."""
    return web.json_response({"error": message, "status": status}, status=status,
                             headers=headers)


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(given: str | None, secret: SecretStr) -> bool:
    # Constant time over the bytes, so the comparison reveals nothing of the token.
    return given is not None and hmac.compare_digest(given.encode(),
                                                     secret.get_secret_value().encode())


def _session_key(token: SecretStr) -> bytes:
    return hmac.new(token.get_secret_value().encode(), b"txstream web session key",
                    hashlib.sha256).digest()


def session_value(token: SecretStr, now: float | None = None) -> str:
    """A login session cookie: ``v1.<expiry>.<HMAC of the expiry, keyed by the token>``.

    Stateless: every worker that has the same token accepts it, so a browser's session
    works on any worker and on requests Faust routes to the owning worker (it forwards
    the Cookie header). Changing the token ends every session.
    """
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    message = f"{_SESSION_VERSION}.{expires}"
    mac = hmac.new(_session_key(token), message.encode(), hashlib.sha256).hexdigest()
    return f"{message}.{mac}"


def valid_session(token: SecretStr, value: str | None, now: float | None = None) -> bool:
    """Whether ``value`` is a session cookie made with ``token`` that has not expired."""
    if not value:
        return False
    version, _, rest = value.partition(".")
    expires_text, _, mac = rest.partition(".")
    if version != _SESSION_VERSION or not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expected = hmac.new(_session_key(token), f"{version}.{expires_text}".encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return False
    return int(expires_text) > (time.time() if now is None else now)


class WebGuard:
    """Who may see what: the web token (or a session), and the metrics token."""

    def __init__(self, token: SecretStr | None, metrics_token: SecretStr | None) -> None:
        self.token = token
        self.metrics_token = metrics_token

    def authorized(self, request: web.Request) -> bool:
        """Whether ``request`` may see its path."""
        path = request.path
        if path in PUBLIC_PATHS:
            return True
        if path == METRICS_PATH:
            return self.metrics_token is None or _matches(bearer_token(request),
                                                          self.metrics_token)
        if self.token is None:
            return True
        return (_matches(bearer_token(request), self.token)
                or valid_session(self.token, request.cookies.get(SESSION_COOKIE)))

    def refusal(self, request: web.Request) -> web.StreamResponse:
        """The answer to an unauthorized request: 401 JSON, or the login page for a browser."""
        if request.path == METRICS_PATH:
            return json_error(401, "this endpoint needs Authorization: Bearer <the metrics "
                                   "token> (TXSTREAM_METRICS_TOKEN)",
                              headers={"WWW-Authenticate": _REALM})
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            # A person opening a page: send them to log in, and back here afterwards.
            target = request.path_qs if len(request.path_qs) <= MAX_QUERY else request.path
            raise web.HTTPSeeOther(str(URL(LOGIN_PATH).with_query(next=target)))
        return json_error(401, "authentication required: send Authorization: Bearer <token> "
                               "(TXSTREAM_WEB_TOKEN), or log in at /login",
                          headers={"WWW-Authenticate": _REALM})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard_middleware(guard: WebGuard) -> Any:
    @web.middleware
    async def guard_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse what no view should see, then run the view; every error as JSON."""
        try:
            if request.method in ("GET", "HEAD") and request.body_exists:
                return json_error(400, f"a {request.method} request takes no body")
            if len(request.query_string) > MAX_QUERY:
                return json_error(414, f"the query string is longer than {MAX_QUERY} "
                                       "characters")
            if not guard.authorized(request):
                return guard.refusal(request)
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects stay redirects
            return _http_error(request, exc)

    return guard_requests


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own 404, 405, 413 … as JSON, echoing at most :data:`MAX_ECHO` characters."""
    headers = {name: value for name, value in exc.headers.items()
               if name.lower() in ("allow", "www-authenticate", "retry-after")}
    if exc.status == 404:
        message = f"no such endpoint: {shown(request.path)} (see /openapi.json)"
    elif exc.status == 405:
        message = (f"method {shown(request.method)} not allowed on {shown(request.path)}; "
                   f"allowed: {exc.headers.get('Allow', '')}")
    elif exc.status == 413:
        message = "request body too large"
    else:
        message = exc.reason or "error"
    return json_error(exc.status, message, headers=headers)


def add_security_headers(*, tls: bool) -> Callable[[web.Request, web.StreamResponse],
                                                   Awaitable[None]]:
    """An ``on_response_prepare`` hook that sets the security headers on every response."""

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        # Pages set their own policy (inline script and style by hash); the rest run nothing.
        headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        # Every answer is live data, or a page that fetches it: never stored by a cache.
        headers.setdefault("Cache-Control", "no-store")
        if tls:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")

    return prepare


def install_security(app: TxApp) -> WebGuard:
    """Put the guard in front of every view and the headers on every response."""
    settings = app.settings
    guard = WebGuard(settings.web_token, settings.metrics_token)
    web_app = app.web.web_app  # type: ignore[attr-defined]
    # Outermost: it sees aiohttp's own 404/405 and every view's exceptions first.
    web_app.middlewares.insert(0, _guard_middleware(guard))
    web_app.on_response_prepare.append(add_security_headers(
        tls=settings.web_cert_file is not None))
    return guard
