"""Turns (services.shared.turns): work that holds the event loop runs in the order it
asked, one piece a pass of the loop, so that what arrives in between is seen first."""

from __future__ import annotations

import asyncio

import pytest

from services.shared.turns import Turns


async def three_pieces(guard: Turns | asyncio.Lock) -> list[str]:
    """What three pieces of work behind ``guard`` did, and when the loop ran what each
    left it (as a request read meanwhile would be)."""
    done: list[str] = []
    loop = asyncio.get_running_loop()

    async def work(name: str) -> None:
        async with guard:
            done.append(name)
            loop.call_soon(done.append, f"after {name}")

    await asyncio.gather(*(work(name) for name in ("a", "b", "c")))
    return done


async def test_each_turn_runs_in_order_and_the_loop_polls_between_turns() -> None:
    assert await three_pieces(Turns()) == ["a", "after a", "b", "after b", "c", "after c"]


async def test_a_lock_would_run_them_all_in_one_pass() -> None:
    """What the turns are for: with a plain lock, nothing else runs between them."""
    assert (await three_pieces(asyncio.Lock()))[:3] == ["a", "b", "c"]


async def test_an_error_or_a_cancelled_wait_passes_the_turn_on() -> None:
    turns = Turns()
    done: list[str] = []

    async def failing() -> None:
        async with turns:
            raise ValueError("the work failed")

    async def work(name: str) -> None:
        async with turns:
            done.append(name)

    first = asyncio.create_task(failing())
    cancelled = asyncio.create_task(work("cancelled"))
    last = asyncio.create_task(work("last"))
    await asyncio.sleep(0)  # all three have asked
    cancelled.cancel()
    with pytest.raises(ValueError, match="the work failed"):
        await first
    await last
    assert cancelled.cancelled()
    assert done == ["last"]


async def test_a_turn_handed_to_work_cancelled_before_it_ran_is_passed_on() -> None:
    turns = Turns()
    done: list[str] = []
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Task[None]] = []

    async def work(name: str) -> None:
        async with turns:
            done.append(name)

    async def holder() -> None:
        async with turns:
            waiting.extend(asyncio.create_task(work(n)) for n in ("handed", "after"))
            await asyncio.sleep(0)  # both wait
            # Cancelled in the pass after the turn is handed to it, before it runs.
            loop.call_soon(loop.call_soon, waiting[0].cancel)

    await holder()
    handed, after = waiting
    await asyncio.wait_for(after, 5)
    assert handed.cancelled()
    assert done == ["after"]
