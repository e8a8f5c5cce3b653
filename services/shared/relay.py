"""The relay: moves a service's public events from its store to the bus, in log order.

The event store is the outbox. The relay publishes a page, waits for the bus to
acknowledge it, and only then records how far it got, so a crash can re-publish a page
(at-least-once, same envelope ids) but never skip one.

On each start it also checks that the bus still holds what the tracking row says was
published: a broker that restarted without its storage, or a topic recreated by hand,
has lost the tail (or all) of the log, and the relay republishes from the last event the
bus still has. Consumers dedupe by position, so they converge on the same state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder

from services.shared import faults, tracing
from services.shared.bus import Bus
from services.shared.publishing import EventCatalogue
from services.shared.supervision import Health
from services.shared.threads import run_in_threadpool

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
        verify_interval: float = 60.0,
    ) -> None:
        self.app = app
        self.catalogue = catalogue
        self.bus = bus
        self.page = page
        self.poll_interval = poll_interval
        # How often an idle relay checks that the bus still holds what it published.
        self.verify_interval = verify_interval
        self.name = f"relay:{catalogue.source}"
        self.health = Health(self.name, "relay")
        self._positions: TrackingRecorder = app.factory.tracking_recorder()
        self._after: int | None = None  # next page starts after this position
        self._tracked = 0  # what the tracking row says

    def position(self) -> int:
        return self._positions.max_tracking_id(self.name) or 0

    async def reconcile(self) -> int:
        """Resume from the tracking row, or from earlier when the bus lost events."""
        tracked = self._tracked = await run_in_threadpool(self.position)
        after = tracked
        held = await self.bus.last_position(self.catalogue.source)
        if held is not None and held < tracked:
            first_missing, _ = await run_in_threadpool(self.catalogue.read, self.app, held, 1)
            if first_missing and first_missing[0].position <= tracked:
                log.warning(
                    "%s: the bus holds events up to position %d but %d were published; it lost"
                    " part of the log (a broker restarted without its storage, or the topic"
                    " was recreated). Republishing from position %d.",
                    self.name, held, tracked, held,
                    extra={"worker": self.name, "bus_position": held, "tracked": tracked},
                )
                after = held
        self._after = self.health.position = after
        return after

    async def run_once(self) -> int | None:
        """Publish the next page; how many envelopes went out, None when caught up."""
        if self._after is None:
            await self.reconcile()
        after = self._after or 0
        envelopes, last = await run_in_threadpool(
            self.catalogue.read, self.app, after, self.page
        )
        if last == after:
            self.health.progressed(after)  # caught up, with the bus reachable
            return None
        if envelopes:
            with tracing.tracer().start_as_current_span(
                f"publish {self.catalogue.source}",
                attributes={"messaging.batch.message_count": len(envelopes),
                            "medcode.position.last": last},
            ):
                await self.bus.publish(self.catalogue.source, envelopes)
        faults.point("relay.after_publish")
        if last > self._tracked:  # a republish after a loss stays below the tracking row
            await run_in_threadpool(self._positions.insert_tracking, Tracking(self.name, last))
            self._tracked = last
        self._after = last
        self.health.progressed(last)
        return len(envelopes)

    async def run_until_idle(self) -> int:
        published = 0
        while (count := await self.run_once()) is not None:
            published += count
        return published

    async def run_forever(self) -> None:
        """Publish as events arrive (supervised: each restart reconciles with the bus,
        and so does an idle relay every ``verify_interval`` seconds)."""
        self._after = None
        verified = time.monotonic()
        while True:
            if await self.run_once() is None:
                if time.monotonic() - verified > self.verify_interval:
                    await self.reconcile()
                    verified = time.monotonic()
                await asyncio.sleep(self.poll_interval)
