"""The one place where the platform is assembled: settings in, running parts out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from services.shared.bus import Bus
from services.shared.consumer import Consumer
from services.shared.log_bus import LogBus
from services.shared.mail import Mail, open_mail
from services.shared.product import Infrastructure, Product, Running, discover
from services.shared.relay import Relay
from services.shared.settings import Settings

log = logging.getLogger(__name__)


def make_bus(settings: Settings) -> Bus:
    if settings.mode == "embedded":
        return LogBus()
    from services.shared.kafka_bus import KafkaBus

    return KafkaBus(
        settings.kafka_bootstrap_servers,
        idempotent=settings.kafka_idempotence,
        topic_prefix=settings.kafka_topic_prefix,
    )


class Platform:
    """Every installed product started over one bus, plus their relays and consumers."""

    def __init__(self, settings: Settings, products: list[Product] | None = None) -> None:
        self.settings = settings
        self.products = discover() if products is None else products
        self.bus = make_bus(settings)
        self.infra = Infrastructure(settings, self.bus)
        self.relays: list[Relay] = []
        self.consumers: list[Consumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.failures: list[str] = []
        self._warming: set[asyncio.Task[None]] = set()
        self.started = False  # relays and consumers launched
        self.mail: Mail | None = None

    @property
    def running(self) -> dict[str, Running]:
        return self.infra.products

    @property
    def clients(self) -> dict[str, Any]:
        return {name: running.client for name, running in self.running.items()}

    async def start(self) -> Platform:
        self.mail = self.infra.mail = await open_mail(self.settings)
        for product in self.products:
            running = await product.start(self.infra)
            self.running[product.name] = running
            if running.app is not None and running.catalogue is not None:
                if isinstance(self.bus, LogBus):
                    self.bus.register(running.app, running.catalogue)
                else:
                    self.relays.append(Relay(running.app, running.catalogue, self.bus))
            self.consumers.extend(running.consumers)
        return self

    def run_background(self) -> None:
        """Start relays and consumers; a task that dies marks the platform unready."""
        self.started = True
        for relay in self.relays:
            self._spawn(relay.name, relay.run_forever())
        for consumer in self.consumers:
            self._spawn(consumer.name, consumer.run())
        if self.mail is not None:
            log.info("outgoing mail goes to %s", self.mail.where)
            self._spawn(self.mail.delivery.name, self.mail.delivery.run_forever())

    def serve(self) -> None:
        """Start the products' serving tasks; one that stops marks the platform unready."""
        for name, running in self.running.items():
            for number, task in enumerate(running.serving):
                self._spawn(f"{name} serving task {number + 1}", task())

    def warm(self) -> None:
        """Start the products' warm-ups; they end when done, and a failure only logs."""
        for name, running in self.running.items():
            for warmup in running.warmups:
                task = asyncio.create_task(warmup(), name=f"{name} warm-up")
                task.add_done_callback(self._warmed)
                self._warming.add(task)

    def _warmed(self, task: asyncio.Task[None]) -> None:
        self._warming.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed", task.get_name(), exc_info=task.exception())

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=name)

        def done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                self.failures.append(f"{name}: {t.exception()!r}")
                log.error("%s stopped", name, exc_info=t.exception())

        task.add_done_callback(done)
        self.tasks.append(task)

    @property
    def healthy(self) -> bool:
        return not self.failures and all(not t.done() for t in self.tasks)

    async def stop(self) -> None:
        background = [*self.tasks, *self._warming]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self.tasks.clear()
        for running in reversed(list(self.running.values())):
            await running.close()
        if self.mail is not None:
            await self.mail.close()
            self.mail = None
        await self.bus.close()
