"""SkippedRecords: records read back that txstream could not use, counted per topic, logged once."""

from __future__ import annotations

import logging
from collections import Counter

__all__ = ["SkippedRecords"]

logger = logging.getLogger(__name__)


class SkippedRecords:
    """Records on topics txstream reads back (its outputs, its changelogs) that were skipped.

    Such a record is not one txstream wrote, or it is damaged: it is never fatal. The first
    one of each topic is logged with its place and reason (a flood of them must not flood
    the log); the count per topic goes to ``/stats/`` and ``/metrics``.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def skip(self, topic: str, where: str, reason: str) -> None:
        """Count one skipped record of ``topic`` at ``where`` (partition/offset or key)."""
        if not self.counts[topic]:
            logger.warning("skipped a record of %s at %s that txstream cannot use: %s "
                           "(further ones are only counted: see /stats/ and /metrics)",
                           topic, where, reason)
        self.counts[topic] += 1

    def snapshot(self) -> dict[str, int]:
        """Skipped records per topic."""
        return dict(sorted(self.counts.items()))
