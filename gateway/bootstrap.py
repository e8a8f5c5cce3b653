"""The one place where the platform is assembled: settings in, running parts out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from services.shared import metrics, threads, tracing
from services.shared.bus import Bus
from services.shared.consumer import Consumer
from services.shared.dead_letters import DeadLetters, PostgresDeadLetters, SQLiteDeadLetters
from services.shared.log_bus import LogBus
from services.shared.mail import Mail, open_mail
from services.shared.product import Infrastructure, Product, Running, discover
from services.shared.relay import Relay
from services.shared.settings import Settings
from services.shared.supervision import Backoff, Health, supervise
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)
# How long a cancelled task is given to end before it is cancelled again (``cancelled``).
STOP_GRACE = 5.0


def make_bus(settings: Settings) -> Bus:
    if settings.mode == "embedded":
        return LogBus()
    from services.shared.kafka_bus import KafkaBus

    return KafkaBus(
        settings.kafka_bootstrap_servers,
        idempotent=settings.kafka_idempotence,
        topic_prefix=settings.kafka_topic_prefix,
    )


def make_dead_letters(settings: Settings) -> DeadLetters:
    """The dead-letter table beside the event stores (connects: call at start, not import)."""
    if settings.mode == "embedded":
        return SQLiteDeadLetters(settings.data_dir / "dead_letters.sqlite")
    return PostgresDeadLetters(settings.postgres_dsn())


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
        self._died: list[str] = []  # tasks that ended with an error (fatal, or a bug)
        self._warming: set[asyncio.Task[None]] = set()
        self._then: Callable[[], None] | None = None  # once warm (see warm)
        self.up = False  # products started
        self.started = False  # relays and consumers launched
        self.writer = True  # this process runs them (see run_background)
        self.dead_letters: DeadLetters | None = None
        # Source name -> the newest public position in its store (local sources only).
        self.heads: dict[str, Callable[[], Awaitable[int]]] = {}
        self.monitor_interval = 2.0
        self.mail: Mail | None = None

    @property
    def running(self) -> dict[str, Running]:
        return self.infra.products

    @property
    def clients(self) -> dict[str, Any]:
        return {name: running.client for name, running in self.running.items()}

    async def start(self) -> Platform:
        tracing.configure("medcode")
        self.mail = self.infra.mail = await open_mail(self.settings)
        for product in self.products:
            running = await product.start(self.infra)
            self.running[product.name] = running
            if running.app is not None and running.catalogue is not None:
                app, catalogue = running.app, running.catalogue
                self.heads[catalogue.source] = partial(
                    run_in_threadpool, catalogue.last_position, app)
                if isinstance(self.bus, LogBus):
                    self.bus.register(app, catalogue)
                else:
                    self.relays.append(Relay(
                        app, catalogue, self.bus,
                        verify_interval=self.settings.relay_verify_seconds))
            self.consumers.extend(running.consumers)
        if self.consumers:
            self.dead_letters = await run_in_threadpool(make_dead_letters, self.settings)
        for consumer in self.consumers:
            consumer.max_attempts = self.settings.consumer_max_attempts
            consumer.dead_letters = self.dead_letters
            consumer.store_head = self.heads.get(consumer.source)
        self.up = True
        return self

    @property
    def workers(self) -> list[Health]:
        """The relays and consumers this process runs (none in a serving process that
        left them to another: see ``run_background``)."""
        if not self.writer:
            return []
        return [r.health for r in self.relays] + [c.health for c in self.consumers]

    def run_background(self, *, writer: bool = True) -> None:
        """Start relays and consumers under supervision, and the lag monitor.

        Without ``writer`` (another serving process runs them) nothing is started and
        the platform only answers requests.
        """
        self.started = True
        self.writer = writer
        if not writer:
            return
        backoff = Backoff(initial=self.settings.worker_backoff_initial_ms / 1000,
                          cap=self.settings.worker_backoff_max_ms / 1000)
        for relay in self.relays:
            metrics.watch_worker("relay", relay.name)
            self._spawn(relay.name, supervise(relay.health, relay.run_forever, backoff=backoff))
        for consumer in self.consumers:
            metrics.watch_worker("consumer", consumer.name)
            self._spawn(consumer.name, supervise(consumer.health, consumer.run, backoff=backoff))
        if self.mail is not None:
            log.info("outgoing mail goes to %s", self.mail.where)
            self._spawn(self.mail.delivery.name, self.mail.delivery.run_forever())
        self._spawn("monitor", self._monitor())

    async def measure(self) -> None:
        """Lags of every relay and consumer, and outbox depths, into health and metrics."""
        if not self.writer:
            return  # another serving process runs them and reports their figures
        heads: dict[str, int] = {}
        for source, head in self.heads.items():
            heads[source] = await head()
        pending = 0
        for relay in self.relays:
            source = relay.catalogue.source
            relay.health.lag = max(heads.get(source, 0) - relay.health.position, 0)
            metrics.RELAY_LAG.labels(source).set(relay.health.lag)
            pending += relay.health.lag
        for consumer in self.consumers:
            if consumer.source in heads:
                consumer.health.lag = max(heads[consumer.source] - consumer.position, 0)
                metrics.CONSUMER_LAG.labels(consumer.name).set(consumer.health.lag)
        if self.relays:
            metrics.OUTBOX_DEPTH.labels("events").set(pending)
        if self.mail is not None:
            metrics.OUTBOX_DEPTH.labels("mail").set(await self.mail.outbox.depth())
        for running in self.running.values():
            for name, depth in running.outboxes.items():
                metrics.OUTBOX_DEPTH.labels(name).set(await depth())

    async def _monitor(self) -> None:
        while True:
            try:
                await self.measure()
            except Exception:  # a store briefly unreachable: the workers report that
                log.warning("measuring lag failed", exc_info=True)
            await asyncio.sleep(self.monitor_interval)

    def serve(self) -> None:
        """Start the products' serving tasks; one that stops marks the platform unready."""
        for name, running in self.running.items():
            for number, task in enumerate(running.serving):
                self._spawn(f"{name} serving task {number + 1}", task())

    def warm(self, then: Callable[[], None] | None = None) -> None:
        """Start the products' warm-ups; they end when done, and a failure only logs.
        ``then`` is called once they have all ended (at once if there are none)."""
        self._then = then
        for name, running in self.running.items():
            for warmup in running.warmups:
                task = asyncio.create_task(warmup(), name=f"{name} warm-up")
                task.add_done_callback(self._warmed)
                self._warming.add(task)
        self._all_warm()

    def _warmed(self, task: asyncio.Task[None]) -> None:
        self._warming.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed", task.get_name(), exc_info=task.exception())
        self._all_warm()

    def _all_warm(self) -> None:
        if not self._warming and self._then is not None:
            then, self._then = self._then, None
            then()

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=name)

        def done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                self._died.append(f"{name}: {t.exception()!r}")
                log.error("%s stopped", name, exc_info=t.exception())

        task.add_done_callback(done)
        self.tasks.append(task)

    @property
    def failures(self) -> list[str]:
        """Why a relay or consumer stopped for good (restarts do not count)."""
        return list(self._died)

    @property
    def healthy(self) -> bool:
        """Every relay and consumer still runs (it may be retrying)."""
        return not self._died and all(not t.done() for t in self.tasks)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when everything runs, none is failing repeatedly, and lag is in bounds."""
        settings = self.settings
        problems = list(self._died)
        for worker in self.workers:
            # The worker's health says "stopped" a loop turn before its task's done
            # callback records the death: readiness must not say ready in between.
            died = any(p.startswith(f"{worker.name}: ") for p in self._died)
            if worker.state == "stopped" and not died:
                problems.append(f"{worker.name}: stopped, {worker.last_error}")
            elif worker.consecutive_failures >= settings.ready_max_failures:
                problems.append(f"{worker.name}: {worker.consecutive_failures} failures in a"
                                f" row, last: {worker.last_error}")
            if settings.ready_max_lag and (worker.lag or 0) > settings.ready_max_lag:
                problems.append(f"{worker.name}: {worker.lag} positions behind"
                                f" (READY_MAX_LAG={settings.ready_max_lag})")
        ready = self.up and self.healthy and not problems
        return ready, {
            "status": "ready" if ready else "not ready",
            "problems": problems,
            "workers": [w.as_dict() for w in self.workers],
        }

    async def stop(self) -> None:
        await cancelled([*self.tasks, *self._warming])
        self.tasks.clear()
        # A cancelled task's worker thread runs on; close no store under it.
        if not await threads.idle(timeout=30):
            log.warning("closing the stores while %d blocking calls still run", threads.busy())
        for running in reversed(list(self.running.values())):
            await running.close()
        if self.mail is not None:
            await self.mail.close()
            self.mail = None
        await self.bus.close()
        if self.dead_letters is not None:
            self.dead_letters.close()


async def cancelled(tasks: list[asyncio.Task[Any]], grace: float = STOP_GRACE) -> None:
    """Cancel the tasks and wait until every one has ended. One still running ``grace``
    seconds after a cancellation (it swallowed it, or awaits something that does) is
    named in the log and cancelled again, rather than holding the stop for ever."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=grace)
        for task in done:  # retrieved: a failure was logged by the task's own callback
            if not task.cancelled():
                task.exception()
        if pending:
            log.warning("still running %g s after being cancelled, cancelled again: %s",
                        grace, ", ".join(sorted(t.get_name() for t in pending)))
