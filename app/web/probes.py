"""Health and readiness probes: ``GET /healthz`` and ``GET /readyz``, never behind the token.

``/healthz`` answers 200 while the process runs and its event loop serves requests (the
answer itself proves both): restart the worker when it stops answering. ``/readyz``
answers 200 when every readiness check passes and 503 with the failing checks' reasons
otherwise: send traffic to (and count as up) only a ready worker. The checks are the one
list in :func:`readiness_checks`; a new reason not to be ready is one more entry there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = ["Check", "install_probes", "readiness", "readiness_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passes, and why (or what it saw)."""

    name: str
    ok: bool
    detail: str


def _assigned(app: TxApp) -> Check:
    source = app.topic_names.transactions
    try:
        owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == source)
    except Exception as exc:  # no consumer yet: starting
        return Check("assigned", False, f"no partition assignment yet ({type(exc).__name__})")
    if not owned:
        return Check("assigned", False, f"no partition of {source} assigned to this worker "
                                        f"(joining the group, or more workers than partitions)")
    return Check("assigned", True, f"partitions {owned} of {source}")


def _recovered(app: TxApp) -> Check:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    remaining = recovery.active_remaining_total()
    if not recovery.completed.is_set() or remaining:
        return Check("recovered", False, f"restoring tables from their changelogs: "
                                         f"{remaining} record(s) to go")
    return Check("recovered", True, "tables restored")


def _consuming(app: TxApp) -> Check:
    if getattr(app, "rebalancing", False):
        return Check("consuming", False, "the consumer group is rebalancing")
    if not app.consumer.flow_active:  # type: ignore[attr-defined]
        return Check("consuming", False, "the consumer is paused")
    return Check("consuming", True, "reading transactions")


def _broker(app: TxApp) -> Check:
    state = app.broker_monitor.snapshot()
    if state["reachable"] is False:
        return Check("broker", False, f"the broker has not answered for "
                                      f"{state['for_seconds']:.0f} s ({state['last_error']})")
    if app.fatal_error is not None:
        return Check("broker", False, f"stopping: {app.fatal_error}")
    return Check("broker", True, "answers" if state["reachable"] else "not probed yet")


def readiness_checks(app: TxApp) -> list[Check]:
    """Every readiness check, in order: add a new one here (each is a function of the app)."""
    checks: list[Callable[[TxApp], Check]] = [_assigned, _recovered, _consuming, _broker]
    return [check(app) for check in checks]


def readiness(app: TxApp) -> tuple[bool, dict[str, Any]]:
    """Whether the worker is ready, and the body ``/readyz`` answers."""
    checks = readiness_checks(app)
    ready = all(check.ok for check in checks)
    return ready, {"ready": ready, "checks": [asdict(check) for check in checks],
                   "reasons": [f"{check.name}: {check.detail}" for check in checks
                               if not check.ok]}


def install_probes(app: TxApp) -> None:
    """Serve ``GET /healthz`` and ``GET /readyz``."""
    started = time.monotonic()

    @app.page("/healthz")
    class Health(View):
        """Alive: the process runs and its event loop answers."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok",
                              "uptime_seconds": round(time.monotonic() - started, 1)})

    @app.page("/readyz")
    class Ready(View):
        """Ready: assigned, recovered, consuming, broker answering (503 with the reasons)."""

        async def get(self, request: Request) -> Response:
            ready, body = readiness(app)
            return self.json(body, status=200 if ready else 503)
