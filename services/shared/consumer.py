"""Runs a projection over one source's deliveries, applying each event once.

A projection stores ``(source, position, cursor)`` with its own write. On start the
consumer asks the bus to resume after the stored cursor, and it drops any delivery at
or below the stored position, so re-deliveries after a crash change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from services.shared.bus import Bus, Delivery
from services.shared.search.model import Checkpoint

log = logging.getLogger(__name__)


class ProjectionMoved(Exception):
    """The projection's target changed under it (an index rebuild was promoted).

    The consumer re-reads the checkpoint of the new target and carries on from there.
    """


class Projection(Protocol):
    name: str

    async def checkpoint(self, source: str) -> Checkpoint | None: ...

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        """Write the effect of ``deliveries`` and the checkpoint of the last one together."""


class Consumer:
    def __init__(self, projection: Projection, bus: Bus, source: str) -> None:
        self.projection = projection
        self.bus = bus
        self.source = source
        self.position = 0
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except ProjectionMoved:
                log.info("%s moved to a new target; resuming from its checkpoint", self.name)

    @property
    def name(self) -> str:
        return f"{self.projection.name}:{self.source}"

    async def _run(self) -> None:
        stored = await self.projection.checkpoint(self.source)
        self.position = stored.position if stored else 0
        after_cursor = stored.cursor if stored else None
        async for batch in self.bus.deliveries(
            self.source, group=self.name, after_cursor=after_cursor
        ):
            fresh = [d for d in batch if d.envelope.position > self.position]
            if fresh:
                await self.projection.apply(self.source, fresh)
                self.position = fresh[-1].envelope.position

    async def run_until(self, position: int, timeout: float = 120.0) -> None:
        """Run until the projection has applied ``position`` (for commands, tests, benches)."""
        task = asyncio.create_task(self.run())
        try:
            async with asyncio.timeout(timeout):
                while self.position < position:
                    if task.done():
                        task.result()
                        return
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
