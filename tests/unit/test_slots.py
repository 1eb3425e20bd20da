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
