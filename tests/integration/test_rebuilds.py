"""Rebuilds that cannot lie: a write racing a promote lands in the new live index, and a
rebuild reads the event store whenever the bus cannot prove it holds the whole log."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from starlette.concurrency import run_in_threadpool

from gateway import cli
from services.lookup import commands as lookup_commands
from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.lookup.projections import SearchProjection
from services.lookup.runtime import search_catalog
from services.shared.bus import topic_for
from services.shared.consumer import Consumer
from services.shared.kafka_bus import KafkaBus
from services.shared.log_bus import LogBus
from services.shared.relay import Relay
from services.shared.search.model import Checkpoint, IndexChange
from services.shared.settings import Settings
from tests.conftest import chapters
from tests.e2e.test_distributed import expected_documents

pytestmark = [pytest.mark.integration]


@pytest.fixture(params=["embedded", "distributed"])
def mode_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    name = "embedded_settings" if request.param == "embedded" else "distributed_settings"
    yield request.getfixturevalue(name)


class RacingIndex:
    """The live index, except that a promote of ``fresh`` happens just before its first
    write: the write picked this index, the promote drops it."""

    def __init__(self, live: Any, catalog: Any, fresh: Any) -> None:
        self._live, self._catalog, self._fresh = live, catalog, fresh
        self.name = live.name
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live, name)

    async def write(self, change: IndexChange[Any], checkpoint: Checkpoint) -> None:
        if not self.raced:
            self.raced = True
            await self._catalog.promote(self._fresh)
        await self._live.write(change, checkpoint)


class RacingCatalog:
    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog
        self.fresh: Any = None
        self.racing: RacingIndex | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    async def live(self) -> Any:
        live = await self._catalog.live()
        if self.fresh is None or (self.racing is not None and self.racing.raced):
            return live
        if self.racing is None:
            self.racing = RacingIndex(live, self._catalog, self.fresh)
        return self.racing


async def test_a_write_racing_a_promote_retries_on_the_new_live_index(
    mode_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    settings = mode_settings
    release, entries = icd10cm_release
    app = CodeSets(env=settings.event_store_env("lookup"))
    catalog = search_catalog(settings)
    racing = RacingCatalog(catalog)
    bus = LogBus()
    bus.register(app, CATALOGUE)
    try:
        await run_in_threadpool(app.import_release, "ICD10CM", release, "test",
                                chapters(entries, "3"))
        first = await run_in_threadpool(CATALOGUE.last_position, app)
        live = Consumer(SearchProjection(racing), bus, "lookup")  # type: ignore[arg-type]
        await live.run_until(first)
        fresh = await catalog.create_version()  # a rebuild, done up to here
        await Consumer(SearchProjection(catalog, pinned=fresh), bus, "lookup").run_until(first)
        await run_in_threadpool(app.import_release, "ICD10CM", "2027-01-01", "test",
                                chapters(entries, "3", "10"))
        target = await run_in_threadpool(CATALOGUE.last_position, app)
        racing.fresh = fresh  # the promote comes between choosing the index and writing
        await live.run_until(target, timeout=20)
        assert racing.racing is not None and racing.racing.raced
        now_live = await catalog.live()
        assert now_live.name == fresh.name
        held = [asdict(d) for d in await now_live.documents()]
        expected = [asdict(d) for d in await run_in_threadpool(expected_documents, app)]
        assert len(held) == len(expected) and held == expected
    finally:
        await catalog.close()
        app.close()


async def test_a_rebuild_reads_the_event_store_when_the_bus_cannot_prove_the_whole_log(
    distributed_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    release, entries = icd10cm_release
    # A topic created by hand without retention settings: the broker cannot prove it keeps
    # everything (with Kafka, it would keep records for its default seven days).
    settings = replace(distributed_settings, kafka_topic_prefix=f"m-{secrets.token_hex(3)}")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic_for("lookup", settings.kafka_topic_prefix),
                                            1, 1)])
    finally:
        await admin.close()
    app = CodeSets(env=settings.event_store_env("lookup"))
    bus = KafkaBus(settings.kafka_bootstrap_servers, idempotent=False,
                   topic_prefix=settings.kafka_topic_prefix)
    try:
        await run_in_threadpool(app.import_release, "ICD10CM", release, "test",
                                chapters(entries, "3"))
        await Relay(app, CATALOGUE, bus).run_until_idle()
    finally:
        await bus.close()
        app.close()
    said = await lookup_commands.rebuild_search(cli.context(settings))
    assert "read from the event store" in said, said
    catalog = search_catalog(settings)
    app = CodeSets(env=settings.event_store_env("lookup"))
    try:
        held = [asdict(d) for d in await (await catalog.live()).documents()]
        assert held == [asdict(d) for d in await run_in_threadpool(expected_documents, app)]
    finally:
        await catalog.close()
        app.close()
    # With a topic medcode created (unlimited retention, proven), the bus is read.
    proven = await lookup_commands.rebuild_search(cli.context(distributed_settings))
    assert "read from the bus" in proven, proven
