"""A pool of engine slots with a bounded wait queue, usable from any event loop and any thread."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from mindfu_core.domain.chat import EngineStats
from mindfu_core.errors import Overloaded

T = TypeVar("T")


class SlotPool(Generic[T]):
    """Hands out ``slots`` one caller each; at most ``max_queue`` callers wait, the rest get ``Overloaded``.

    A caller may say which free slot it prefers (the one holding the longest prefix of its prompt, say);
    among equals, the slot that has been free longest goes first (least recently used). ``release`` may
    be called from a worker thread: a slot goes straight to the oldest live waiter.
    """

    #: weight of the latest hold time in the running estimate of how long a request keeps a slot
    SMOOTHING = 0.2
    #: the longest Retry-After given (a stuck engine should not send clients away for hours)
    MAX_RETRY_AFTER_S = 600.0

    def __init__(
        self, slots: list[T], *, max_queue: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._free: list[T] = list(slots)
        self._size = len(slots)
        self._max_queue = max_queue
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._since: dict[int, float] = {}  # id(slot) -> when its holder got it
        self._hold_s: float | None = None  # running estimate of how long a request holds a slot
        self._rejected = 0

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

    def engine_stats(
        self,
        *,
        requests_total: int,
        tokens_generated_total: int,
        ready: bool,
        prompt_tokens_total: int = 0,
        cached_tokens_total: int = 0,
        prompt_cache_bytes: int = 0,
        prompt_cache_hits: int = 0,
    ) -> EngineStats:
        """An engine's ``stats()``: these slots' load and the engine's counters."""
        return EngineStats(
            slots=self._size,
            active=self.active,
            queued=self.queued,
            max_queue=self._max_queue,
            requests_total=requests_total,
            tokens_generated_total=tokens_generated_total,
            ready=ready,
            prompt_tokens_total=prompt_tokens_total,
            cached_tokens_total=cached_tokens_total,
            prompt_cache_bytes=prompt_cache_bytes,
            prompt_cache_hits=prompt_cache_hits,
            rejected_total=self._rejected,
        )

    def admit(self) -> None:
        """``Overloaded`` now if ``acquire`` would raise it (no free slot and a full line)."""
        with self._lock:
            if not self._free and len(self._waiters) >= self._max_queue:
                raise self._overloaded()

    def retry_after(self) -> float:
        """Seconds until the line now waiting has had its slots, by how long requests have held them:
        (waiting + 1) / slots x the running hold time, at least 1, at most ``MAX_RETRY_AFTER_S``."""
        hold = self._hold_s if self._hold_s is not None else 1.0
        wait = (len(self._waiters) + 1) / self._size * hold
        return float(min(self.MAX_RETRY_AFTER_S, max(1, math.ceil(wait))))

    def _overloaded(self) -> Overloaded:
        self._rejected += 1
        return Overloaded(
            f"all {self._size} engine slot(s) are busy and {self._max_queue} request(s) are waiting",
            retry_after=self.retry_after(),
        )

    def _taken(self, slot: T) -> T:
        self._since[id(slot)] = self._clock()
        return slot

    async def acquire(self, prefer: Callable[[T], int] | None = None) -> T:
        """A free slot (the one ``prefer`` scores highest, if given); waits in line if none is free,
        ``Overloaded`` if the line is full."""
        with self._lock:
            if self._free:
                best = 0
                if prefer is not None and len(self._free) > 1:
                    scores = [prefer(slot) for slot in self._free]
                    best = scores.index(max(scores))  # the first of equals: free the longest
                return self._taken(self._free.pop(best))
            if len(self._waiters) >= self._max_queue:
                raise self._overloaded()
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
            since = self._since.pop(id(slot), None)
            if since is not None:
                held = self._clock() - since
                last = self._hold_s
                self._hold_s = held if last is None else last + self.SMOOTHING * (held - last)
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
            with self._lock:
                self._taken(slot)
            waiter.set_result(slot)
