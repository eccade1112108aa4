"""DueQueue: items scheduled at event times, popped once the watermark passes them."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

__all__ = ["DueQueue", "Schedule", "TimeQueue"]

T = TypeVar("T")


class Schedule(Protocol[T]):
    """What every window kind's close and expiry schedules can do."""

    def push(self, due: int, item: T) -> None: ...
    def pop_due(self, limit: int) -> Iterator[tuple[int, T]]: ...
    def clear(self) -> None: ...


class DueQueue(Generic[T]):
    """Items grouped by due time; one heap entry per distinct time, not per item.

    Epoch-aligned windows share end times, so thousands of customers' windows closing at
    14:05:00 cost one heap entry and one list.
    """

    __slots__ = ("_heap", "buckets")

    def __init__(self) -> None:
        self._heap: list[int] = []
        #: Items by due time. A hot loop may append to an existing bucket directly; a new
        #: due time must go through :meth:`push`, which also puts it on the heap.
        self.buckets: dict[int, list[T]] = {}

    def push(self, due: int, item: T) -> None:
        """Schedule ``item`` at ``due``."""
        bucket = self.buckets.get(due)
        if bucket is None:
            self.buckets[due] = [item]
            heapq.heappush(self._heap, due)
        else:
            bucket.append(item)

    def push_all(self, due: int, items: list[T]) -> None:
        """Schedule every item of ``items`` at ``due``."""
        bucket = self.buckets.get(due)
        if bucket is None:
            self.buckets[due] = list(items)
            heapq.heappush(self._heap, due)
        else:
            bucket.extend(items)

    def pop_buckets(self, limit: int) -> Iterator[tuple[int, list[T]]]:
        """Remove and yield ``(due, items)`` for every due time ``<= limit``, oldest first."""
        heap = self._heap
        while heap and heap[0] <= limit:
            due = heapq.heappop(heap)
            yield due, self.buckets.pop(due)

    def pop_due(self, limit: int) -> Iterator[tuple[int, T]]:
        """Remove and yield ``(due, item)`` for every item with ``due <= limit``, oldest first."""
        heap = self._heap
        while heap and heap[0] <= limit:
            due = heapq.heappop(heap)
            for item in self.buckets.pop(due):
                yield due, item

    def clear(self) -> None:
        """Forget everything."""
        self._heap.clear()
        self.buckets.clear()

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets.values())


class TimeQueue:
    """Customer ids due at times that rarely repeat (an event's own time): one heap entry each.

    Sliding windows and sessions are due at any millisecond, where a bucket per due time
    (:class:`DueQueue`) costs a dict entry and a list per item for nothing. Each entry is
    one int, ``due << 64 | customer_id`` (ids are below 2**63): ordering ints is much
    cheaper than ordering ``(due, id)`` tuples, and the expiry heaps hold an entry per
    retained event.
    """

    __slots__ = ("heap",)

    def __init__(self) -> None:
        #: The entries. A hot loop may ``heappush(heap, due << 64 | item)`` itself; the
        #: list is never replaced, so a reference to it stays valid.
        self.heap: list[int] = []

    def push(self, due: int, item: int) -> None:
        """Schedule customer ``item`` at ``due``."""
        heapq.heappush(self.heap, due << 64 | item)

    def pop_due(self, limit: int) -> Iterator[tuple[int, int]]:
        """Remove and yield ``(due, item)`` for every item with ``due <= limit``, oldest first."""
        heap = self.heap
        bound = (limit + 1) << 64
        while heap and heap[0] < bound:
            entry = heapq.heappop(heap)
            yield entry >> 64, entry & _ITEM_MASK

    def clear(self) -> None:
        """Forget everything."""
        self.heap.clear()

    def __len__(self) -> int:
        return len(self.heap)


_ITEM_MASK = (1 << 64) - 1
