"""The slot pool: bounded waiting, Overloaded beyond it, hand-over from threads, cancelled waiters."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mindfu_adapters.llm.slots import SlotPool
from mindfu_core import Overloaded


async def test_waiters_beyond_the_queue_are_overloaded() -> None:
    pool = SlotPool(["s"], max_queue=1)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    assert (pool.active, pool.queued) == (1, 1)
    with pytest.raises(Overloaded):
        await pool.acquire()
    pool.release(held)
    assert await waiting == "s"
    pool.release("s")
    assert (pool.active, pool.queued) == (0, 0)


async def test_release_from_a_worker_thread_wakes_the_waiter() -> None:
    pool = SlotPool([1], max_queue=4)
    slot = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    threading.Thread(target=pool.release, args=(slot,)).start()
    assert await asyncio.wait_for(waiting, 2) == 1


async def test_a_cancelled_waiter_does_not_swallow_the_slot() -> None:
    pool = SlotPool([1], max_queue=4)
    slot = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    pool.release(slot)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)
    assert await asyncio.wait_for(pool.acquire(), 1) == 1


async def test_zero_queue_refuses_at_once() -> None:
    pool = SlotPool([1], max_queue=0)
    await pool.acquire()
    with pytest.raises(Overloaded):
        await pool.acquire()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_retry_after_is_how_long_the_line_takes_by_how_long_requests_hold_their_slots() -> None:
    clock = Clock()
    pool = SlotPool(["a", "b"], max_queue=2, clock=clock)
    solo = SlotPool(["x"], max_queue=0, clock=clock)
    await solo.acquire()
    with pytest.raises(Overloaded) as first:  # nothing measured yet: a second per slot-turn
        solo.admit()
    assert first.value.retry_after == 1.0
    for _ in range(3):  # requests hold a slot 10 s each
        slot = await pool.acquire()
        clock.now += 10
        pool.release(slot)
    held = [await pool.acquire(), await pool.acquire()]
    waiting = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:
        await pool.acquire()
    # 2 waiting + this one, on 2 slots, 10 s a turn
    assert refused.value.retry_after == 15.0
    assert pool.engine_stats(requests_total=0, tokens_generated_total=0, ready=True).rejected_total == 1
    for slot in held:
        pool.release(slot)
    for task in waiting:
        pool.release(await task)


async def test_retry_after_is_bounded() -> None:
    clock = Clock()
    pool = SlotPool(["a"], max_queue=0, clock=clock)
    slot = await pool.acquire()
    clock.now += 100_000
    pool.release(slot)
    await pool.acquire()
    with pytest.raises(Overloaded) as refused:
        await pool.acquire()
    assert refused.value.retry_after == SlotPool.MAX_RETRY_AFTER_S
