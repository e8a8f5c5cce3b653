"""The consult product's Prometheus series (the process-wide default registry, which the
platform's ``/metrics`` exposes)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from services.consult.application import Consults
from services.shared.metrics import MEASURED_BY_ONE
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)

CONSULTS_WAITING = Gauge(
    "medcode_consults_waiting",
    "Consult cases waiting for an expert (open or claimed), and of those the overdue ones "
    "(past the answer time of the member's plan).",
    ["state"],
    multiprocess_mode=MEASURED_BY_ONE,  # the writing serving process measures it
)


class QueueGauge:
    """Keeps ``medcode_consults_waiting`` fresh from the store, every ``interval`` seconds."""

    def __init__(self, app: Consults, interval: float = 15.0) -> None:
        self.app = app
        self.interval = interval

    async def refresh(self) -> tuple[int, int]:
        waiting, overdue = await run_in_threadpool(self.app.waiting_counts)
        CONSULTS_WAITING.labels("waiting").set(waiting)
        CONSULTS_WAITING.labels("overdue").set(overdue)
        return waiting, overdue

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)
