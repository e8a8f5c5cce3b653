"""Relays and consumers that recover: backoff, failure counts, dead letters, poison events,
checkpoints ahead of the store, and what /readyz says about them (embedded mode, real
SQLite stores and the in-process bus)."""

from __future__ import annotations

import asyncio
import io
import json
import random
from pathlib import Path

import pytest
from starlette.concurrency import run_in_threadpool

from gateway import cli
from gateway.bootstrap import Platform, make_dead_letters
from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.shared.bus import Delivery
from services.shared.consumer import CheckpointAhead, Consumer, PoisonEvent
from services.shared.log_bus import LogBus
from services.shared.search.model import Checkpoint
from services.shared.settings import Settings
from services.shared.supervision import Backoff, Fatal, Health, is_transient, supervise
from tests.conftest import chapters


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff, rng = Backoff(initial=0.5, cap=8.0), random.Random(1)
    delays = [[backoff.delay(n, rng) for _ in range(200)] for n in range(1, 9)]
    for n, seen in enumerate(delays, start=1):
        step = min(8.0, 0.5 * 2 ** (n - 1))
        assert all(step / 2 <= d <= step for d in seen)
        assert max(seen) - min(seen) > step / 4  # jittered, not one value
    assert max(delays[-1]) <= 8.0


def test_transient_errors_are_told_from_bad_input() -> None:
    import sqlite3

    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert not is_transient(sqlite3.OperationalError("no such table: x"))
    assert not is_transient(KeyError("code")) and not is_transient(ValueError("bad"))


async def test_supervise_restarts_counts_and_resets_on_progress() -> None:
    health, runs = Health("w", "consumer"), []

    async def flaky() -> None:
        runs.append(health.consecutive_failures)
        if len(runs) < 4:
            raise ConnectionError(f"down #{len(runs)}")
        health.progressed(7)

    await supervise(health, flaky, backoff=Backoff(initial=0.001, cap=0.002))
    assert runs == [0, 1, 2, 3]
    assert health.failures == 3 and health.consecutive_failures == 0
    assert health.state == "running" and health.position == 7
    assert health.last_error == "ConnectionError: down #3"


async def test_a_cancellation_nobody_asked_for_is_a_failure_to_retry() -> None:
    # aiokafka lets CancelledError out when a broker goes away: the worker must retry,
    # not end silently; a real cancellation of the worker still stops it.
    health, runs = Health("w", "relay"), []

    async def leaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise asyncio.CancelledError
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise(health, leaky, backoff=Backoff(initial=0.001)))
    while len(runs) < 2:
        await asyncio.sleep(0.01)
    assert health.failures == 1 and "cancelled inside the worker" in (health.last_error or "")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_fatal_error_stops_for_good() -> None:
    health = Health("w", "relay")

    async def broken() -> None:
        raise Fatal("cannot go on")

    with pytest.raises(Fatal):
        await supervise(health, broken, backoff=Backoff(initial=0.001))
    assert health.state == "stopped" and health.consecutive_failures == 1


class Flaky:
    """A projection over real deliveries that fails on chosen positions, in memory."""

    name = "flaky"

    def __init__(self, bad: set[int], error: Exception, *, skip_safe: bool) -> None:
        self.bad, self.error, self.skip_safe = bad, error, skip_safe
        self.applied: list[int] = []
        self.stored: Checkpoint | None = None
        self.tries: dict[int, int] = {}

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return self.stored

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if d.envelope.position in self.bad:
                self.tries[d.envelope.position] = self.tries.get(d.envelope.position, 0) + 1
                raise self.error  # nothing of the batch is kept: like a rolled-back write
        self.applied += [d.envelope.position for d in deliveries]
        last = deliveries[-1]
        self.stored = Checkpoint(self.name, source, last.envelope.position, last.cursor)

    async def skip(self, source: str, delivery: Delivery) -> None:
        self.stored = Checkpoint(self.name, source, delivery.envelope.position, delivery.cursor)


@pytest.fixture
def store(tmp_path: Path, icd10cm_release: tuple[str, list[CodeEntry]]) -> CodeSets:
    settings = Settings(data_dir=tmp_path)
    app = CodeSets(env=settings.event_store_env("lookup"))
    app.import_release("ICD10CM", icd10cm_release[0], "test",
                       chapters(icd10cm_release[1], "3")[:60])
    return app


async def run_supervised(consumer: Consumer, target: int) -> asyncio.Task[None]:
    task = asyncio.create_task(supervise(consumer.health, consumer.run,
                                         backoff=Backoff(initial=0.001, cap=0.01)))
    async with asyncio.timeout(30):
        while consumer.position < target and not task.done():
            await asyncio.sleep(0.01)
    return task


async def test_an_event_that_always_fails_becomes_a_dead_letter_where_skipping_is_safe(
    store: CodeSets, tmp_path: Path
) -> None:
    bus = LogBus()
    bus.register(store, CATALOGUE)
    positions = [e.position for e in CATALOGUE.iterate(store)]
    poison = positions[len(positions) // 2]
    projection = Flaky({poison}, KeyError("payload has no 'title'"), skip_safe=True)
    consumer = Consumer(projection, bus, "lookup", max_attempts=3)
    consumer.dead_letters = make_dead_letters(Settings(data_dir=tmp_path))
    task = await run_supervised(consumer, positions[-1])
    task.cancel()
    assert projection.applied == [p for p in positions if p != poison]
    assert projection.tries[poison] >= 3  # alone 3 times (and in its batch before that)
    [letter] = consumer.dead_letters.list()
    assert (letter.consumer, letter.position, letter.attempts) == ("flaky:lookup", poison, 3)
    assert "KeyError" in letter.error and letter.envelope.position == poison
    assert consumer.health.failures == 2 and consumer.health.consecutive_failures == 0
    # `medcode events dead-letters` lists it, one JSON object a line.
    out = io.StringIO()
    assert await cli.list_dead_letters(Settings(data_dir=tmp_path), "flaky:lookup", out) == 1
    [listed] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert listed["position"] == poison and "KeyError" in listed["error"]
    assert await cli.list_dead_letters(Settings(data_dir=tmp_path), "search:lookup",
                                       io.StringIO()) == 0


async def test_a_projection_that_cannot_skip_stops_loudly(store: CodeSets, tmp_path: Path) -> None:
    bus = LogBus()
    bus.register(store, CATALOGUE)
    positions = [e.position for e in CATALOGUE.iterate(store)]
    projection = Flaky({positions[5]}, ValueError("bad"), skip_safe=False)
    consumer = Consumer(projection, bus, "lookup", max_attempts=2)
    consumer.dead_letters = make_dead_letters(Settings(data_dir=tmp_path))
    with pytest.raises(PoisonEvent, match="cannot skip"):
        await supervise(consumer.health, consumer.run, backoff=Backoff(initial=0.001))
    assert projection.applied == positions[:5]  # everything before it, nothing after
    assert consumer.health.state == "stopped" and consumer.dead_letters.list() == []


async def test_transient_errors_never_dead_letter(store: CodeSets, tmp_path: Path) -> None:
    bus = LogBus()
    bus.register(store, CATALOGUE)
    positions = [e.position for e in CATALOGUE.iterate(store)]
    projection = Flaky({positions[0]}, ConnectionError("search is down"), skip_safe=True)
    consumer = Consumer(projection, bus, "lookup", max_attempts=2)
    consumer.dead_letters = make_dead_letters(Settings(data_dir=tmp_path))
    task = asyncio.create_task(supervise(consumer.health, consumer.run,
                                         backoff=Backoff(initial=0.001, cap=0.005)))
    async with asyncio.timeout(10):
        while consumer.health.consecutive_failures < 6:
            await asyncio.sleep(0.005)
    projection.bad.clear()  # the outage ends
    async with asyncio.timeout(10):
        while consumer.position < positions[-1]:
            await asyncio.sleep(0.01)
    task.cancel()
    assert projection.applied == positions and consumer.dead_letters.list() == []


async def test_readiness_says_not_ready_as_soon_as_a_worker_stops(
    embedded_settings: Settings,
) -> None:
    """Between a worker's fatal error and its task's done callback, /readyz saw no problem."""
    platform = Platform(embedded_settings)
    await platform.start()
    try:
        assert platform.readiness()[0]
        consumer = platform.consumers[0]
        consumer.health.failed(Fatal("the checkpoint is ahead"), fatal=True)  # task not ended
        ready, body = platform.readiness()
        assert not ready
        assert body["problems"] == [f"{consumer.name}: stopped, Fatal: the checkpoint is ahead"]
    finally:
        await platform.stop()


async def test_a_checkpoint_ahead_of_the_store_stops_the_consumer(
    embedded_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    """The store was reset while the index survived: replaying would skip silently."""
    platform = Platform(embedded_settings)
    await platform.start()
    app = platform.running["lookup"].app
    assert app is not None
    await run_in_threadpool(app.import_release, "ICD10CM", icd10cm_release[0], "test",
                            chapters(icd10cm_release[1], "3")[:30])
    target = CATALOGUE.last_position(app)
    consumer = next(c for c in platform.consumers if c.source == "lookup")
    await consumer.run_until(target)
    await platform.stop()
    (embedded_settings.data_dir / "lookup.sqlite").unlink()  # the store is reset

    platform = Platform(embedded_settings)
    await platform.start()
    try:
        platform.run_background()
        consumer = next(c for c in platform.consumers if c.source == "lookup")
        async with asyncio.timeout(20):
            while consumer.health.state != "stopped":
                await asyncio.sleep(0.02)
        assert "ahead" in (consumer.health.last_error or "")
        assert f"position {target}" in (consumer.health.last_error or "")
        ready, body = platform.readiness()
        assert not ready and any("CheckpointAhead" in p for p in body["problems"])
        with pytest.raises(CheckpointAhead):
            raise_from = next(t for t in platform.tasks if t.get_name() == consumer.name)
            await raise_from
    finally:
        await platform.stop()
