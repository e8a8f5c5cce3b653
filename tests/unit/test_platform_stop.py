"""Stopping the platform ends its tasks, even one that swallows a cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.bootstrap import cancelled


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again_and_named(
        caplog: pytest.LogCaptureFixture) -> None:
    async def stubborn() -> None:
        for _ in range(2):
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                pass  # the first cancellation is lost, as a careless library may lose it

    async def obedient() -> None:
        await asyncio.sleep(100)

    tasks = [asyncio.create_task(stubborn(), name="stubborn worker"),
             asyncio.create_task(obedient(), name="obedient worker")]
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="gateway.bootstrap"):
        await asyncio.wait_for(cancelled(tasks, grace=0.05), timeout=5)
    assert all(t.done() for t in tasks)
    assert "stubborn worker" in caplog.text and "obedient worker" not in caplog.text


async def test_a_failed_task_does_not_stop_the_others_from_being_cancelled() -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    async def waiting() -> None:
        await asyncio.sleep(100)

    tasks = [asyncio.create_task(failing()), asyncio.create_task(waiting())]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancelled(tasks, grace=0.05), timeout=5)
    assert tasks[1].cancelled()
