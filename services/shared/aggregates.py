"""What every product's Application does the same way: load an aggregate of a known type,
and run a command again when a concurrent writer saved one of its aggregates first."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


def get_aggregate(app: Application[UUID], cls: type[A], aggregate_id: UUID) -> A | None:
    """The aggregate, or None when there is none of that type with this id."""
    try:
        found: Any = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, cls) else None


class Retrier:
    """Runs a command's ``attempt`` until its save is not beaten by a concurrent writer.

    The event store refuses a save whose aggregate version was taken meanwhile
    (IntegrityError); the attempt then runs again on fresh state. With N writers on one
    aggregate a loser retries at most N-1 times; ``busy`` is raised after ``attempts``.
    """

    def __init__(self, busy: Callable[[], Exception], attempts: int = 100) -> None:
        self.busy = busy
        self.attempts = attempts
        self._jitter = random.Random()  # noqa: S311 - back-off jitter, not a secret

    def __call__(self, attempt: Callable[[], T]) -> T:
        for n in range(self.attempts):
            try:
                return attempt()
            except IntegrityError:
                # Jittered back-off so losers do not collide again in lockstep.
                time.sleep(self._jitter.uniform(0, min(0.001 * 2 ** min(n, 6), 0.05)))
        raise self.busy()
