"""Types of the compiled encoders (app/_speedups.pyx)."""

from collections.abc import Callable, Sequence

Record = tuple[bytes, bytes, int]

def fixed_run_records(head: bytes, middle: bytes, bounds: bytes, end_ms: int,
                      windows: Sequence[tuple[int, Sequence[int], object]],
                      fallback: Callable[[tuple[int, Sequence[int], object]], Record],
                      ) -> list[Record]: ...
def sliding_run_records(head: bytes, kind_text: bytes, size: int,
                        rows: list[tuple[int, int, int, int, int, int]],
                        fallback: Callable[[tuple[int, int, int, int, int, int]], Record],
                        ) -> list[Record]: ...
