"""Types of the compiled encoders (app/records/_speedups.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

Record = tuple[bytes, bytes, int]

def fixed_run_records(head: bytes, middle: bytes, bounds: bytes, end_ms: int,
                      windows: Sequence[tuple[int, Sequence[int], object]],
                      fallback: Callable[[tuple[int, Sequence[int], object]], Record],
                      ) -> list[Record]: ...
def fixed_packed_records(head: bytes, middle: bytes, bounds: bytes, end_ms: int,
                         values: memoryview, rows: Sequence[tuple[int, Sequence[int], object]],
                         fallback: Callable[[tuple[int, Sequence[int], object]], Record],
                         ) -> list[Record]: ...
def sliding_run_records(head: bytes, kind_text: bytes, size: int,
                        rows: list[tuple[int, int, int, int, int, int]],
                        fallback: Callable[[tuple[int, int, int, int, int, int]], Record],
                        ) -> list[Record]: ...
def configure_parse(loads: Callable[[bytes], Any], make: Callable[..., Any], currency: str,
                    min_event_ms: int, max_event_ms: int, max_amount_cents: int,
                    max_customer_id: int, max_tx_id_length: int) -> None: ...
def parse(value: bytes | None, key: bytes | None) -> Any: ...
