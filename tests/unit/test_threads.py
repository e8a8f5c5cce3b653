"""Shutdown waits for blocking calls whose awaiting task was cancelled."""

from __future__ import annotations

import asyncio
import threading

from services.shared import threads


async def test_idle_waits_for_a_thread_whose_task_was_cancelled() -> None:
    entered, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def blocking() -> None:
        entered.set()
        release.wait(5)
        finished.append("done")

    task = asyncio.create_task(threads.run_in_threadpool(blocking))
    assert await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert not await threads.idle(timeout=0.05)  # the thread still runs

    release.set()
    assert await threads.idle(timeout=5)
    assert finished == ["done"]


async def test_a_call_cancelled_before_its_thread_began_never_runs() -> None:
    ran: list[int] = []
    # Occupy every worker thread so the next call must wait for one.
    limiter = __import__("anyio").to_thread.current_default_thread_limiter()
    hold = threading.Event()
    occupied = threading.Semaphore(0)

    def occupy() -> None:
        occupied.release()
        hold.wait(5)

    holders = [asyncio.create_task(threads.run_in_threadpool(occupy))
               for _ in range(int(limiter.total_tokens))]
    for _ in holders:
        assert await asyncio.to_thread(occupied.acquire, True, 5)

    waiting = asyncio.create_task(threads.run_in_threadpool(ran.append, 1))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    hold.set()
    await asyncio.gather(*holders)
    assert await threads.idle(timeout=5)
    assert ran == []
    assert threads.busy() == 0


async def test_idle_does_not_wait_for_calls_begun_after_it() -> None:
    assert await threads.idle(timeout=1)
    assert await threads.run_in_threadpool(sum, [1, 2, 3]) == 6
