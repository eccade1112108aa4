"""Interfaces between the parts: what the App, the views and the metrics need of the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from faust.types import TP

from tables.partition import PartitionState

__all__ = ["OutputCountersT", "PipelineT", "ThroughputT"]


class ThroughputT(Protocol):
    """Source records counted as they arrive."""

    #: Records received since the process started (valid or not; redeliveries again).
    total: int

    def rate(self) -> float:
        """Records per second over the recent past."""
        ...


class OutputCountersT(Protocol):
    """Output records sent since the process started, per source partition."""

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-ready form: totals, and rows per partition (and kind)."""
        ...


class PipelineT(Protocol):
    """The transaction pipeline as the App, the views and the metrics see it.

    Implemented by :class:`agents.transactions.Pipeline`; the composition root
    (``app/compose.py``) plugs it in, so nothing here imports the agents.
    """

    #: In-memory state of each source partition this worker has loaded.
    states: dict[int, PartitionState]

    @property
    def throughput(self) -> ThroughputT:
        """Source records received."""
        ...

    @property
    def outputs_sent(self) -> OutputCountersT:
        """Output records sent."""
        ...

    def state_for(self, partition: int) -> PartitionState:
        """The partition's state, loaded from its tables the first time it is needed."""
        ...

    async def on_batch(self, batch: Mapping[TP, list[Any]]) -> None:
        """Apply one fetch's records of the source topic."""
        ...

    async def flush(self) -> None:
        """Write all changed state now."""
        ...

    async def settle(self) -> None:
        """Wait until the last flush's records and offsets are with the broker."""
        ...
