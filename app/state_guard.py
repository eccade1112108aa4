"""StateGuard: the local state and the broker must agree; where they do not, the worker stops.

A broker can come back without what a worker's state was built from: the embedded broker
forgets everything when it stops, and a topic can be deleted or recreated. Going on would
serve stale state, drop new input as already applied, or write changelogs that disagree
with the local RocksDB. Each check here compares an offset the local state has reached
with how far the broker's topic goes, and stops the worker with one message that says
what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP

from .exceptions import RecoveryError
from .kafka.admin import true_end_offsets
from .kafka.security import KafkaConnection

__all__ = ["Behind", "StateGuard"]

#: One disagreement: what (topic, partition), how far the broker's topic goes (its end
#: offset), and the offset the local state has already reached in it.
Behind = tuple[str, int, int, int]


class StateGuard:
    """Checks offsets the local state has reached against the ends of the broker's topics.

    ``tables`` is Faust's table manager (changelog topic -> table, persisted offsets);
    ``applied`` says which source offset each loaded partition's state has applied;
    ``fail`` stops the worker with the error.
    """

    def __init__(self, *, kafka: KafkaConnection, source: str,
                 required: Callable[[], Collection[str]],
                 tables: Any, applied: Callable[[], Mapping[int, int]],
                 fail: Callable[[RecoveryError], None], datadir: Path) -> None:
        self.kafka = kafka
        self.source = source
        self.required = required
        self.tables = tables
        self.applied = applied
        self.fail = fail
        self.datadir = datadir

    # -- the checks -------------------------------------------------------------------

    def check_changelog_ends(self, ends: Mapping[TP, int]) -> dict[TP, int]:
        """Before recovery: each changelog must reach past what the local table has applied.

        ``ends`` are true end offsets (last offset + 1). Returns them, raised to the local
        offset where one is behind, after stopping the worker: Faust's own check would
        otherwise raise with a stack trace, and it misses a changelog of one record.
        """
        behind: list[Behind] = []
        changelogs = self.tables._changelogs
        for tp, end in ends.items():
            table = changelogs.get(tp.topic)
            persisted = table.persisted_offset(tp) if table is not None else None
            if persisted is not None and persisted >= end:
                behind.append((tp.topic, tp.partition, end, persisted))
        if not behind:
            return dict(ends)
        self.fail(self._error(behind))
        raised = {(topic, partition): persisted for topic, partition, _, persisted in behind}
        return {tp: max(end, raised.get((tp.topic, tp.partition), -1) + 1)
                for tp, end in ends.items()}

    def check_source_end(self, partition: int, end: int | None, applied: int) -> bool:
        """While consuming: the input partition must reach past what its state has applied.

        ``end`` is the fetch's high watermark. False (and the worker stopping) if not.
        """
        if end is None or applied < end:
            return True
        self.fail(self._error([(self.source, partition, end, applied)]))
        return False

    def check_changelog_growth(self, topic: str, partition: int, first_offset: int) -> bool:
        """At a flush: a changelog's new records must come after the ones written before.

        False (and the worker stopping) when the broker put them at or before the
        offset the local table had recorded: the changelog was emptied or recreated.
        """
        table = self.tables._changelogs.get(topic)
        persisted = table.persisted_offset(TP(topic, partition)) if table is not None else None
        if persisted is None or first_offset > persisted:
            return True
        self.fail(self._error([(topic, partition, first_offset, persisted)]))
        return False

    async def check_after_outage(self, topics: set[str], assigned: Iterable[TP]) -> None:
        """When the broker answers again: the topics are there and reach as far as before."""
        missing = sorted(set(self.required()) - topics)
        if missing:
            self.fail(RecoveryError(
                f"the broker at {self.kafka} came back without topics this worker depends "
                f"on: {', '.join(missing)}. {self._what_to_do()}"))
            return
        behind: list[Behind] = []
        applied = dict(self.applied())
        changelogs = self.tables._changelogs
        wanted: dict[TopicPartition, int] = {}
        for tp in assigned:
            if tp.topic == self.source and applied.get(tp.partition, -1) >= 0:
                wanted[TopicPartition(tp.topic, tp.partition)] = applied[tp.partition]
            elif tp.topic in changelogs:
                persisted = changelogs[tp.topic].persisted_offset(tp)
                if persisted is not None:
                    wanted[TopicPartition(tp.topic, tp.partition)] = persisted
        if not wanted:
            return
        ends = await true_end_offsets(self.kafka, wanted)
        for tp, reached in sorted(wanted.items()):
            end = ends.get(tp, 0)
            if reached >= end:
                behind.append((tp.topic, tp.partition, end, reached))
        if behind:
            self.fail(self._error(behind))

    # -- the message ------------------------------------------------------------------

    def _error(self, behind: list[Behind]) -> RecoveryError:
        shown = "; ".join(
            f"{topic} partition {partition} ends at offset {end}, but the local state has "
            f"reached offset {reached}" for topic, partition, end, reached in behind[:3])
        more = f" (and {len(behind) - 3} more partitions)" if len(behind) > 3 else ""
        return RecoveryError(
            f"the broker at {self.kafka} has lost data this worker's state depends on: "
            f"{shown}{more}. {self._what_to_do()}")

    def _what_to_do(self) -> str:
        return ("Topics were deleted or recreated, or the broker lost its data (the embedded "
                "broker forgets everything when it stops). The worker stopped without writing "
                f"anything. To go on: delete the data directory {str(self.datadir)!r} and start "
                "the worker again (the tables are rebuilt from the changelogs the broker has), "
                "or rebuild every table from the input topic with 'txstream replay'.")
