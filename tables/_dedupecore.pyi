"""Types of the compiled duplicate check (tables/_dedupecore.pyx)."""

from typing import Any

from .dedupe import Records
from .outputs import Outputs

def apply_batch(state: Any, records: Records, out: Outputs) -> Records: ...
def segment_record(tx_ids: list[str], seen: dict[str, int]) -> bytes: ...
def release(state: Any, tx_ids: list[str], watermark: int) -> None: ...
