"""Errors raised by txstream.

The tree::

    TxstreamError               base of every error txstream raises on purpose
    ├── SettingsError           a TXSTREAM_* variable is missing or malformed (names it)
    ├── InvalidRecord           a transaction failed to parse or validate (carries the reason)
    ├── BrokerError             the embedded broker could not be started or reached
    ├── RecoveryError           table state could not be restored consistently
    └── ReplayError             a replay or a version drop could not be done (says what to do)

A CLI command catches ``TxstreamError`` and prints its message without a stack trace:
each of these is a user's or operator's problem to fix, not a bug.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "InvalidRecord",
    "RecoveryError",
    "ReplayError",
    "SettingsError",
    "TxstreamError",
]


class TxstreamError(Exception):
    """Base class of every error txstream raises on purpose."""


class SettingsError(TxstreamError):
    """A setting (environment variable) is invalid; the message names it."""


class InvalidRecord(TxstreamError):
    """A transaction record failed to parse or validate; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerError(TxstreamError):
    """The embedded broker could not be started, or a broker could not be reached."""


class RecoveryError(TxstreamError):
    """Table state could not be restored consistently from RocksDB and the changelogs."""


class ReplayError(TxstreamError):
    """A replay or a version drop could not be done; the message says why and what to do."""
