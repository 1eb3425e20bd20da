"""A pool of engine slots with a bounded wait queue, usable from any event loop and any thread."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, TypeVar

from mindfu_core.domain.chat import EngineStats
from mindfu_core.errors import Overloaded

T = TypeVar("T")


class SlotPool(Generic[T]):
    """Hands out ``slots`` one caller each; at most ``max_queue`` callers wait, the rest get ``Overloaded``.

    ``release`` may be called from a worker thread: a slot goes straight to the oldest live waiter.
    """

    def __init__(self, slots: list[T], *, max_queue: int) -> None:
        self._free: list[T] = list(slots)
        self._size = len(slots)
        self._max_queue = max_queue
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    @property
    def active(self) -> int:
        return self._size - len(self._free)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def max_queue(self) -> int:
        return self._max_queue

    def engine_stats(self, *, requests_total: int, tokens_generated_total: int, ready: bool) -> EngineStats:
        """An engine's ``stats()``: these slots' load and the engine's counters."""
        return EngineStats(
            slots=self._size,
            active=self.active,
            queued=self.queued,
            max_queue=self._max_queue,
            requests_total=requests_total,
            tokens_generated_total=tokens_generated_total,
            ready=ready,
        )

    async def acquire(self) -> T:
        """A free slot; waits in line if none is free, ``Overloaded`` if the line is full."""
        with self._lock:
            if self._free:
                return self._free.pop()
            if len(self._waiters) >= self._max_queue:
                raise Overloaded(
                    f"all {self._size} engine slot(s) are busy and {self._max_queue} request(s) are waiting"
                )
            waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    handed = None
                else:
                    handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if handed is not None:
                self.release(handed)
            raise

    def release(self, slot: T) -> None:
        """Return ``slot``; thread-safe."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.done():
                    continue
                try:
                    waiter.get_loop().call_soon_threadsafe(self._hand_over, waiter, slot)
                except RuntimeError:  # the waiter's loop is closed: nobody is waiting there any more
                    continue
                return
            self._free.append(slot)

    def _hand_over(self, waiter: asyncio.Future[T], slot: T) -> None:
        if waiter.done():  # cancelled between release() and now
            self.release(slot)
        else:
            waiter.set_result(slot)
