"""The ``txstream`` command line: Faust's CLI with the app, plus txstream's own commands."""

from __future__ import annotations

import sys
from typing import NoReturn

from app.compose import create_app
from app.exceptions import SettingsError, TxstreamError
from app.settings import Settings
from app.txapp import TxApp

from . import alerts, broker, demo, produce, replay, report

__all__ = ["install_commands", "main"]


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"txstream: {message}", file=sys.stderr)
    raise SystemExit(code)


def install_commands(app: TxApp) -> None:
    """Register txstream's commands on the Faust app's CLI."""
    for command in (produce, alerts, broker, demo, report, replay):
        command.register(app)


def main() -> None:
    """Entry point of the ``txstream`` console script and ``python -m app``."""
    try:
        settings = Settings.load()
    except SettingsError as exc:
        _fail(str(exc))
    try:
        app = create_app(settings)
        install_commands(app)
        app.main()
    except TxstreamError as exc:
        _fail(str(exc), code=1)
