"""Fixtures for end-to-end tests: the integration tests' worker processes, re-exported."""

from __future__ import annotations

from tests.integration.conftest import Worker, WorkerFactory, workers

__all__ = ["Worker", "WorkerFactory", "workers"]
