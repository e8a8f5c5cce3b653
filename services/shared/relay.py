"""The relay: moves a service's public events from its store to the bus, in log order.

The event store is the outbox. The relay publishes a page, waits for the bus to
acknowledge it, and only then records how far it got, so a crash can re-publish a page
(at-least-once, same envelope ids) but never skip one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from starlette.concurrency import run_in_threadpool

from services.shared.bus import Bus
from services.shared.publishing import EventCatalogue

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        app: Application[Any],
        catalogue: EventCatalogue,
        bus: Bus,
        *,
        page: int = 1000,
        poll_interval: float = 0.5,
    ) -> None:
        self.app = app
        self.catalogue = catalogue
        self.bus = bus
        self.page = page
        self.poll_interval = poll_interval
        self.name = f"relay:{catalogue.source}"
        self._positions: TrackingRecorder = app.factory.tracking_recorder()

    def position(self) -> int:
        return self._positions.max_tracking_id(self.name) or 0

    async def run_once(self) -> int | None:
        """Publish the next page; how many envelopes went out, None when caught up."""
        after = await run_in_threadpool(self.position)
        envelopes, last = await run_in_threadpool(
            self.catalogue.read, self.app, after, self.page
        )
        if last == after:
            return None
        if envelopes:
            await self.bus.publish(self.catalogue.source, envelopes)
        await run_in_threadpool(self._positions.insert_tracking, Tracking(self.name, last))
        return len(envelopes)

    async def run_until_idle(self) -> int:
        published = 0
        while (count := await self.run_once()) is not None:
            published += count
        return published

    async def run_forever(self) -> None:
        while True:
            if await self.run_once() is None:
                await asyncio.sleep(self.poll_interval)
