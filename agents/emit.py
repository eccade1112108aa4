"""append_outputs: a batch's alerts, window results, sessions and late events as records."""

from __future__ import annotations

from app.records.outputs import (
    alert_records,
    late_records,
    session_records,
    session_writer,
    window_result_records,
    window_run_records,
    window_run_writers,
)
from app.topics import TopicNames
from tables.outputs import Outputs

from .batches import RecordBatches

__all__ = ["append_outputs"]


def append_outputs(batches: RecordBatches, topics: TopicNames, partition: int,
                   out: Outputs) -> None:
    """Append every output record of ``out`` to its topic's batch for ``partition``.

    Outputs go to the partition of the source record they came from, which holds all
    of a customer's events, so one customer's outputs stay in order on each topic.
    """
    if out.alerts:
        batches.to(topics.alerts, partition).extend(alert_records(out.alerts))
    if out.runs or out.results:
        batch = batches.to(topics.window_results, partition)
        if batch.buffer is not None:  # compiled: the encoders write into the batch
            for writer in window_run_writers(out.runs):
                batch.write(writer)
        else:
            batch.extend(window_run_records(out.runs))
        batch.extend(window_result_records(out.results))
    if out.sessions:
        batch = batches.to(topics.sessions, partition)
        if batch.buffer is not None:
            batch.write(session_writer(out.sessions))
        else:
            batch.extend(session_records(out.sessions))
    if out.late:
        batches.to(topics.late, partition).extend(late_records(out.late, partition))
