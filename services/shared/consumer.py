"""Runs a projection over one source's deliveries, applying each event once.

A projection stores ``(source, position, cursor)`` with its own write. On start the
consumer asks the bus to resume after the stored cursor, and it drops any delivery at
or below the stored position, so re-deliveries after a crash change nothing.

Failures: an error on a batch is retried event by event, so one bad event cannot hold
back the others. An event that keeps failing with a non-transient error (see
``supervision.is_transient``) for ``max_attempts`` tries is *poison*: a projection that
declares ``skip_safe = True`` has it set aside as a dead letter and goes on; any other
projection stops the consumer loudly (``PoisonEvent``), because skipping would leave its
read model silently wrong. Transient errors never dead-letter: they are retried with
backoff for as long as they last (see ``supervision.supervise``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from services.shared import faults, metrics, tracing
from services.shared.bus import Bus, Delivery
from services.shared.dead_letters import DeadLetter, DeadLetters, now
from services.shared.search.model import Checkpoint
from services.shared.supervision import Fatal, Health, is_transient
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5


class ProjectionMoved(Exception):
    """The projection's target changed under it (an index rebuild was promoted).

    The consumer re-reads the checkpoint of the new target and carries on from there.
    """


class CheckpointAhead(Fatal):
    """The projection says it applied events the source's store does not have."""


class PoisonEvent(Fatal):
    """An event keeps failing and the projection cannot skip it."""


class Projection(Protocol):
    name: str

    async def checkpoint(self, source: str) -> Checkpoint | None: ...

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        """Write the effect of ``deliveries`` and the checkpoint of the last one together."""


class SkippableProjection(Projection, Protocol):
    """A projection for which leaving one event out is safe (``skip_safe = True``).

    Say why in its docstring: typically a derived index that a rebuild restores once the
    cause is fixed. ``skip`` records the checkpoint of ``delivery`` without its effect.
    """

    skip_safe: bool

    async def skip(self, source: str, delivery: Delivery) -> None: ...


class Consumer:
    def __init__(
        self,
        projection: Projection,
        bus: Bus,
        source: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.projection = projection
        self.bus = bus
        self.source = source
        self.position = 0
        self.max_attempts = max_attempts
        self.health = Health(self.name, "consumer")
        # Wired by the platform when it runs the source's store (None: not checked).
        self.store_head: Callable[[], Awaitable[int]] | None = None
        self.dead_letters: DeadLetters | None = None
        self._attempts: dict[int, int] = {}  # position -> failed tries, across restarts

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except ProjectionMoved:
                log.info("%s moved to a new target; resuming from its checkpoint", self.name)

    @property
    def name(self) -> str:
        return f"{self.projection.name}:{self.source}"

    @property
    def skip_safe(self) -> bool:
        return bool(getattr(self.projection, "skip_safe", False))

    async def _run(self) -> None:
        stored = await self.projection.checkpoint(self.source)
        self.position = stored.position if stored else 0
        await self._check_not_ahead()
        self.health.position = self.position  # where it resumes; not yet progress
        async for batch in self.bus.deliveries(
            self.source,
            group=self.name,
            after_cursor=stored.cursor if stored else None,
            after_position=stored.position if stored else None,
        ):
            fresh = self._fresh(batch)
            if fresh:
                await self._apply(fresh)

    def _fresh(self, batch: list[Delivery]) -> list[Delivery]:
        """The deliveries past the checkpoint, each position once: after a relay restart
        the bus holds a page twice, and both copies can arrive in one batch."""
        fresh, last = [], self.position
        for delivery in batch:
            if delivery.envelope.position > last:
                fresh.append(delivery)
                last = delivery.envelope.position
        return fresh

    async def _check_not_ahead(self) -> None:
        if self.store_head is None or not self.position:
            return
        head = await self.store_head()
        if self.position > head:
            raise CheckpointAhead(
                f"{self.name}: the checkpoint (position {self.position}) is ahead of the"
                f" {self.source} event store, which ends at {head}. The store was reset or restored"
                " from an older backup while this projection survived; replaying would skip"
                " every event up to the checkpoint. Rebuild the projection from the store"
                " (medcode projections rebuild), or restore the matching store."
            )

    async def _apply(self, fresh: list[Delivery]) -> None:
        faults.point("consumer.before_apply")
        try:
            with tracing.consuming(self.name, fresh):
                await self.projection.apply(self.source, fresh)
        except ProjectionMoved:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(fresh) > 1:
                log.warning("%s: a batch of %d failed (%r); applying it event by event",
                            self.name, len(fresh), exc)
                for delivery in fresh:
                    if delivery.envelope.position > self.position:
                        await self._apply([delivery])
                return
            await self._failed_alone(fresh[0], exc)
            return
        for delivery in fresh:
            self._attempts.pop(delivery.envelope.position, None)
        self._advanced(fresh[-1].envelope.position)

    async def _failed_alone(self, delivery: Delivery, exc: Exception) -> None:
        envelope = delivery.envelope
        tries = self._attempts[envelope.position] = self._attempts.get(envelope.position, 0) + 1
        if tries < self.max_attempts:
            raise exc
        what = f"{envelope.type} at position {envelope.position} (event {envelope.id})"
        if not self.skip_safe or self.dead_letters is None:
            raise PoisonEvent(
                f"{self.name}: {what} failed {tries} times: {exc!r}. This projection cannot"
                " skip events, so the consumer stops; fix the cause and restart."
            ) from exc
        letter = DeadLetter(self.name, self.source, envelope.position, envelope.type,
                            f"{type(exc).__name__}: {exc}", tries, now(), envelope)
        await run_in_threadpool(self.dead_letters.record, letter)
        metrics.DEAD_LETTERS.labels(self.name).inc()
        log.error("%s: %s failed %d times; set aside as a dead letter (medcode events"
                  " dead-letters)", self.name, what, tries, exc_info=exc)
        skip = getattr(self.projection, "skip")  # noqa: B009 - declared by skip_safe
        await skip(self.source, delivery)
        self._attempts.pop(envelope.position, None)
        self._advanced(envelope.position)

    def _advanced(self, position: int) -> None:
        self.position = position
        self.health.progressed(position)

    async def run_until(self, position: int, timeout: float = 120.0) -> None:
        """Run until the projection has applied ``position`` (for commands, tests, benches)."""
        task = asyncio.create_task(self.run())
        try:
            async with asyncio.timeout(timeout):
                while self.position < position:
                    if task.done():
                        task.result()
                        return
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
