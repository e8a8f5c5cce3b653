"""Where a projection rebuild reads a source's events from: a bus only when it can prove
it holds the whole log, the event store itself otherwise.

A Kafka topic may have lost records (finite retention, a broker restarted without its
storage, a topic recreated by hand); a rebuild from it would promote an index missing
everything older, without a word. The store is the source of truth and always complete.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.application import Application

from services.shared.bus import Bus
from services.shared.log_bus import LogBus
from services.shared.publishing import EventCatalogue
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)


async def replay_bus(
    bus: Bus, app: Application[Any], catalogue: EventCatalogue
) -> tuple[Bus, str]:
    """The bus to rebuild from and a few words saying which (for the operator)."""
    if isinstance(bus, LogBus):
        return bus, "the event store"
    first, _ = await run_in_threadpool(catalogue.read, app, 0, 1)
    if not first or await bus.holds_whole_log(catalogue.source, first[0].position):
        return bus, "the bus, which holds the whole log"
    log.warning("%s: the bus cannot prove it holds the whole log; rebuilding from the event"
                " store", catalogue.source)
    store = LogBus()
    store.register(app, catalogue)
    return store, "the event store (the bus cannot prove it holds the whole log)"
