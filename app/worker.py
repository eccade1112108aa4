"""TxWorker: Faust's worker, ending on a fatal txstream error with one clear line and exit 1."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

import faust

from .exceptions import TxstreamError
from .logs import install_repeat_filter

__all__ = ["FATAL_EXIT", "TxWorker"]

#: Exit status of a worker stopped by a fatal error (a user's or operator's problem).
FATAL_EXIT = 1


class TxWorker(faust.Worker):
    """Faust's worker; a fatal error recorded on the app ends it cleanly and non-zero.

    A fatal error (the data directory cannot be created, the broker cannot be reached at
    start, the broker came back without the topics the local state depends on) is the
    operator's problem to fix, not a bug: the worker stops as it does on SIGTERM, then
    prints what happened and what to do on stderr, without a stack trace, and exits 1.
    """

    async def start(self) -> None:
        # A TxstreamError raised while the services start (a broker that cannot be reached,
        # a TLS file that does not load) ends the same way as a fatal error recorded later:
        # mode's worker would log it with a stack trace.
        try:
            await super().start()
        except TxstreamError as exc:
            fail = getattr(self.app, "fail", None)
            if fail is None:
                raise
            fail(exc)

    def execute_from_commandline(self) -> NoReturn:
        try:
            super().execute_from_commandline()
        except SystemExit:
            fatal = getattr(self.app, "fatal_error", None)
            if fatal is None:
                raise
            print(f"txstream worker: {fatal}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            logging.shutdown()
            # Everything has stopped and the event loop is closed, but a client thread
            # stopped in the middle of rejoining a group that the broker forgot can stay
            # blocked, and the interpreter would wait for it for ever.
            os._exit(FATAL_EXIT)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # A lost broker makes aiokafka log the same errors ~100 times a second: one line
        # every few seconds, with a count, says as much.
        install_repeat_filter(logger)

    def on_init_dependencies(self) -> Any:
        # The app needs its worker to stop it on a fatal error found at run time.
        self.app.tx_worker = self  # type: ignore[attr-defined]
        return super().on_init_dependencies()
