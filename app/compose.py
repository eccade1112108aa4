"""The composition root: the App from the settings, with the pipeline and the web views plugged in.

Nothing imports this module but the command line: the pipeline (``agents/``) and the views
(``app/web/``) depend on :class:`~app.txapp.TxApp` and the interfaces in ``app/types.py``,
never on what puts them together.
"""

from __future__ import annotations

from agents.transactions import install_pipeline

from .settings import Settings
from .txapp import TxApp, build_app
from .web.views import install_views

__all__ = ["create_app"]


def create_app(settings: Settings) -> TxApp:
    """Build the configured app with its tables, pipeline agent and web views."""
    app = build_app(settings)
    install_pipeline(app)
    install_views(app)
    return app
