"""The embedded bus: consumers read each source's own event log.

In one process there is no need to copy events into a second log: the event store is
durable and ordered, so the bus serves deliveries straight from it (cursor = position)
and ``publish`` only wakes the consumers up. A restarted process therefore loses
nothing, exactly as a Kafka consumer resumes from its stored offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from eventsourcing.application import Application

from services.shared.bus import Delivery
from services.shared.envelope import Envelope
from services.shared.publishing import EventCatalogue
from services.shared.threads import run_in_threadpool


class LogBus:
    def __init__(self, poll_interval: float = 0.5, batch: int = 500) -> None:
        self._sources: dict[str, tuple[Application[Any], EventCatalogue]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._poll_interval = poll_interval
        self._batch = batch

    def register(self, app: Application[Any], catalogue: EventCatalogue) -> None:
        self._sources[catalogue.source] = (app, catalogue)

    def _wakeup(self, source: str) -> asyncio.Event:
        return self._wakeups.setdefault(source, asyncio.Event())

    async def publish(self, source: str, envelopes: Sequence[Envelope]) -> None:
        # Already durable in the source's store; just tell waiting consumers.
        self._wakeup(source).set()

    async def last_position(self, source: str) -> int | None:
        return None  # the bus is the store

    async def holds_whole_log(self, source: str, first_position: int) -> bool:
        return True

    async def deliveries(
        self,
        source: str,
        *,
        group: str,
        after_cursor: int | None,
        after_position: int | None = None,
    ) -> AsyncIterator[list[Delivery]]:
        app, catalogue = self._sources[source]
        after = after_cursor or 0
        wakeup = self._wakeup(source)
        while True:
            envelopes, last = await run_in_threadpool(catalogue.read, app, after, self._batch)
            if envelopes:
                yield [Delivery(e, e.position) for e in envelopes]
            if last == after:
                wakeup.clear()
                # The SQLite recorder cannot notify: poll, or wake early on publish.
                try:
                    await asyncio.wait_for(wakeup.wait(), self._poll_interval)
                except TimeoutError:
                    pass
            after = last

    async def close(self) -> None:
        self._sources.clear()
