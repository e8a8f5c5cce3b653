"""The relay on its own (PostgreSQL store, Kafka-protocol bus), and a broker restart that
loses every topic, after which the relay republishes and consumers converge."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.shared import relay as relay_module
from services.shared.bus import Delivery, topic_for
from services.shared.consumer import Consumer
from services.shared.kafka_bus import KafkaBus, TopicRetentionError
from services.shared.product import discover
from services.shared.relay import Relay
from services.shared.search.model import Checkpoint
from services.shared.settings import Settings
from tests.conftest import chapters
from tests.faults import counting
from tests.faults.harness import count_problems, state_problems
from tests.servers.kafka import _free_port, start_tansu

pytestmark = [pytest.mark.integration]


class Recorded:
    """Every delivery a consumer applies, in order (dedupe is the consumer's job)."""

    name = "recorded"

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.ids: list[str] = []
        self.stored: Checkpoint | None = None

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return self.stored

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        self.positions += [d.envelope.position for d in deliveries]
        self.ids += [str(d.envelope.id) for d in deliveries]
        last = deliveries[-1]
        self.stored = Checkpoint(self.name, source, last.envelope.position, last.cursor)


@pytest.fixture
def store(
    distributed_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> Iterator[CodeSets]:
    app = CodeSets(env=distributed_settings.event_store_env("lookup"))
    app.import_release("ICD10CM", icd10cm_release[0], "test",
                       chapters(icd10cm_release[1], "3")[:120])
    yield app
    app.close()


def bus_for(settings: Settings, prefix: str | None = None) -> KafkaBus:
    return KafkaBus(settings.kafka_bootstrap_servers, idempotent=False,
                    topic_prefix=prefix or settings.kafka_topic_prefix)


async def consume(bus: KafkaBus, target: int) -> Recorded:
    recorded = Recorded()
    await Consumer(recorded, bus, "lookup").run_until(target, timeout=60)
    return recorded


async def test_publishes_public_events_in_log_order_and_records_how_far(
    distributed_settings: Settings, store: CodeSets
) -> None:
    bus = bus_for(distributed_settings)
    try:
        relay = Relay(store, CATALOGUE, bus, page=50)  # several pages
        expected = [e for e in CATALOGUE.iterate(store)]
        assert await relay.run_until_idle() == len(expected)
        assert relay.position() == store.recorder.max_notification_id()
        assert await relay.run_once() is None  # caught up: nothing more to send
        recorded = await consume(bus, expected[-1].position)
        assert recorded.positions == [e.position for e in expected]
        assert recorded.ids == [str(e.id) for e in expected]
        assert await bus.last_position("lookup") == expected[-1].position
        assert await bus.holds_whole_log("lookup", expected[0].position)
    finally:
        await bus.close()


class Crash(BaseException):
    """Stands for kill -9 at a fault point, in-process."""


async def test_a_crash_between_publish_and_tracking_republishes_the_page_once_applied(
    distributed_settings: Settings, store: CodeSets, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = bus_for(distributed_settings)
    try:
        def crash(name: str) -> None:
            if name == "relay.after_publish":
                raise Crash(name)

        monkeypatch.setattr(relay_module.faults, "point", crash)
        with pytest.raises(Crash):
            await Relay(store, CATALOGUE, bus, page=1000).run_until_idle()
        monkeypatch.undo()
        assert Relay(store, CATALOGUE, bus).position() == 0  # the tracking row never came
        await Relay(store, CATALOGUE, bus).run_until_idle()  # the restarted relay
        expected = [e.position for e in CATALOGUE.iterate(store)]
        # The page is on the bus twice, with the same envelope ids...
        raw = Recorded()
        async for batch in bus.deliveries("lookup", group="raw", after_cursor=None):
            raw.positions += [d.envelope.position for d in batch]
            if len(raw.positions) >= 2 * len(expected):
                break
        assert raw.positions == expected + expected
        # ...and a consumer applies each event once.
        assert (await consume(bus, expected[-1])).positions == expected
    finally:
        await bus.close()


async def test_topics_keep_every_record_and_a_topic_that_may_delete_is_refused(
    distributed_settings: Settings, store: CodeSets
) -> None:
    settings = distributed_settings
    bus = bus_for(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await Relay(store, CATALOGUE, bus).run_until_idle()
        topic = topic_for("lookup", settings.kafka_topic_prefix)
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                                   topic)])
        configs = {e[0]: e[1] for r in described.resources for e in r[4]}
        assert configs["retention.ms"] == "-1" and configs["retention.bytes"] == "-1"

        weekly = f"medcode-{secrets.token_hex(3)}"  # made by hand, keeping records a week
        await admin.create_topics([NewTopic(topic_for("lookup", weekly), 1, 1,
                                            topic_configs={"retention.ms": "604800000"})])
        stale = bus_for(settings, weekly)
        try:
            with pytest.raises(TopicRetentionError, match=r"retention\.ms=604800000"):
                await Relay(store, CATALOGUE, stale).run_until_idle()
        finally:
            await stale.close()

        # A topic whose broker reports no configs (Tansu's auto-created ones) is usable,
        # but cannot prove it holds the whole log: rebuilds then read the event store.
        unknown = f"medcode-{secrets.token_hex(3)}"
        await admin.create_topics([NewTopic(topic_for("lookup", unknown), 1, 1)])
        unproven = bus_for(settings, unknown)
        try:
            await Relay(store, CATALOGUE, unproven).run_until_idle()
            first = next(iter(CATALOGUE.iterate(store))).position
            assert await unproven.last_position("lookup") == CATALOGUE.last_position(store)
            assert not await unproven.holds_whole_log("lookup", first)
            assert await bus.holds_whole_log("lookup", first)
        finally:
            await unproven.close()
    finally:
        await admin.close()
        await bus.close()


async def test_a_bus_that_lost_the_log_is_detected_and_the_relay_republishes(
    distributed_settings: Settings, store: CodeSets
) -> None:
    settings = distributed_settings
    first = bus_for(settings)
    try:
        await Relay(store, CATALOGUE, first).run_until_idle()
    finally:
        await first.close()
    # A bus whose topic is empty again (what a broker restarted without storage shows).
    emptied = bus_for(settings, f"medcode-{secrets.token_hex(3)}")
    try:
        expected = [e.position for e in CATALOGUE.iterate(store)]
        assert not await emptied.holds_whole_log("lookup", expected[0])
        relay = Relay(store, CATALOGUE, emptied)
        assert await relay.reconcile() == 0  # tracked up to the end, but the bus has nothing
        assert await relay.run_until_idle() == len(expected)
        assert (await consume(emptied, expected[-1])).positions == expected
        assert await emptied.holds_whole_log("lookup", expected[0])
    finally:
        await emptied.close()


async def test_a_broker_restart_loses_every_topic_and_everything_converges(
    distributed_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    release, entries = icd10cm_release
    port = _free_port()
    broker = contextlib.ExitStack()
    bootstrap = broker.enter_context(start_tansu(port))
    settings = dataclasses.replace(distributed_settings, kafka_bootstrap_servers=bootstrap,
                                   worker_backoff_initial_ms=50, worker_backoff_max_ms=500,
                                   relay_verify_seconds=1)
    platform = Platform(settings, [*discover(), counting.product])
    await platform.start()
    counter = counting.CountingProjection(settings)
    app = platform.running["lookup"].app
    assert isinstance(app, CodeSets)

    async def converged() -> None:
        target = await run_in_threadpool(CATALOGUE.last_position, app)
        async with asyncio.timeout(90):
            while min(c.position for c in platform.consumers if c.source == "lookup") < target:
                assert platform.healthy, platform.failures
                await asyncio.sleep(0.05)

    try:
        platform.run_background()
        await run_in_threadpool(app.import_release, "ICD10CM", release, "test",
                                chapters(entries, "3"))
        await converged()
        broker.close()  # the broker goes away with every topic...
        await run_in_threadpool(app.import_release, "ICD10CM", "2027-01-01", "test",
                                chapters(entries, "3", "10"))
        await asyncio.sleep(1)  # ...relay and consumers fail meanwhile, and retry
        broker.enter_context(start_tansu(port))  # ...and comes back empty
        await converged()
        relay = next(r for r in platform.relays if r.catalogue.source == "lookup")
        # Consumers can catch up on a page before the relay records that it got further:
        # give its health the time to say so (and fail when it never does).
        async with asyncio.timeout(30):
            while relay.health.consecutive_failures:
                await asyncio.sleep(0.05)
        assert relay.health.failures >= 1
        assert "lost" in (relay.health.last_error or "")
        positions = [e.position for e in CATALOGUE.iterate(app)]
        assert not count_problems(await run_in_threadpool(counter.counts), positions)
        assert not await state_problems(settings, app, counter)
        ready, body = platform.readiness()
        assert ready, body
    finally:
        await platform.stop()
        broker.close()
