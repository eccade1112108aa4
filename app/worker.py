"""TxWorker: Faust's worker, ending a start that fails for a known reason with one line."""

from __future__ import annotations

import sys

import faust

from .exceptions import TxstreamError

__all__ = ["TxWorker"]


class TxWorker(faust.Worker):
    """``faust.Worker`` whose start, failing with a :class:`TxstreamError`, exits cleanly.

    mode's worker logs any exception from a start with its traceback; a broker that cannot
    be reached or a TLS file that does not load is the operator's to fix, not a bug, so
    it gets one line on stderr (``txstream worker: …``) and exit status 1, after the
    services that did start are stopped in order.
    """

    async def start(self) -> None:
        try:
            await super().start()
        except TxstreamError as exc:
            print(f"txstream worker: {exc}", file=sys.stderr, flush=True)
            # SystemExit leaves the event loop at once; mode's worker still stops the
            # services in its ``finally`` and then the process exits with this status.
            raise SystemExit(1) from None
