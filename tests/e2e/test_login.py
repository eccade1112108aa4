"""A person opens the guarded dashboard in Chromium: sent to log in, types the token, sees data.

Driven over the DevTools protocol, as a person would use the page: the form is filled and
its button clicked; the session cookie is set by the server and is HttpOnly (the page's
script cannot read it); the page's inline script and style run under its
Content-Security-Policy with no violation reported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.kafka.topic_io import send_raw
from tests.integration.test_pipeline import VALID, _line

from .cdp import Page
from .conftest import WorkerFactory
from .test_dashboard import INSTALL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "e2e-0123456789abcdef-token"


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = f"chromium is not installed; as root: {INSTALL}"
        pytest.fail(message)
    return path


def _type_and_submit(token: str) -> str:
    return (f"document.getElementById('token').value = {token!r};"
            "document.querySelector('#login button').click(); true")


async def test_login_in_a_browser_opens_the_dashboard(workers: WorkerFactory,
                                                      tmp_path: Path) -> None:
    chromium = _chromium()
    worker = workers.start("w1", web_token=TOKEN)
    await send_raw(workers.kafka, workers.topics.transactions,
                   [(str(tx[1]).encode(), _line(*tx)) for tx in VALID])

    async with Page(chromium, tmp_path / "profile") as page:
        await page.goto(worker.base_url + "/dashboard/")
        await page.wait_for("location.pathname === '/login' && !!document.getElementById('token')",
                            30, "the dashboard sends a stranger to the login form")
        assert await page.evaluate("location.search") == "?next=/dashboard/"

        await page.evaluate(_type_and_submit("not-the-right-token-000"))
        error = await page.wait_for(
            "document.getElementById('error') && document.getElementById('error').textContent",
            30, "a wrong token is refused")
        assert error == "That token is not right."
        assert await page.evaluate("location.pathname") == "/login"

        await page.evaluate(_type_and_submit(TOKEN))
        await page.wait_for("location.pathname === '/dashboard/' && "
                            "document.body.dataset.state === 'ok' && "
                            "Number(document.body.dataset.updates) > 0",
                            60, "the dashboard shows data after logging in")
        await page.wait_for(f"document.getElementById('kpi-events').textContent === "
                            f"'{len(VALID)}'", 60, "every event counted on the page")
        # The session is the server's: HttpOnly, so no script on the page can read it.
        assert await page.evaluate("document.cookie") == ""
        violations = [line for line in page.log
                      if "Content Security Policy" in line or "Refused to" in line]
        assert violations == []

        # Without the session, the data the page polls is refused.
        await page.send("Network.clearBrowserCookies")
        status = await page.evaluate("fetch('/dashboard/data/').then(r => r.status)")
        assert status == 401
