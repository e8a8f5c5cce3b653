"""Keeping relays and consumers running: restart after errors, with a record of each.

A background worker (relay or consumer) that meets an error is restarted after a capped
exponential backoff with jitter, so an OpenSearch 429, a broker restart or a busy SQLite
file costs a pause, not the process. Each failure is logged and counted; the count of
*consecutive* failures resets when the worker makes progress again, and readiness
(``/readyz``) reads it. A ``Fatal`` error is one a restart cannot fix (a checkpoint ahead
of the store, a poison event in a projection that must not skip): the worker stops and
stays stopped, and the process reports it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from services.shared import metrics

log = logging.getLogger(__name__)

State = Literal["starting", "running", "retrying", "stopped"]


class Fatal(Exception):
    """An error that restarting cannot fix; the worker stops and says why."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with "equal jitter": between half and all of the step.

    Jitter keeps a fleet of workers that failed together (a broker restart) from
    retrying in lockstep; the floor of half a step keeps the backoff meaningful.
    """

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int, rng: random.Random) -> float:
        step = min(self.cap, self.initial * self.factor ** max(failures - 1, 0))
        return rng.uniform(step / 2, step)


_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says "try again later" rather than "this input is bad".

    Network and timeout errors, HTTP statuses that mean overload or unavailability (the
    OpenSearch client's ``status_code``), Kafka errors marked retriable, and a locked
    or busy SQLite file. A projection failing on one of these never dead-letters an
    event: only errors that persist on the same event count towards that.
    """
    if isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError):
        return True
    if getattr(exc, "retriable", False) is True:  # aiokafka's KafkaError
        return True
    status = getattr(exc, "status_code", None)
    if status in _TRANSIENT_STATUS or status == "N/A":  # opensearch-py ConnectionError
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    module = type(exc).__module__
    # psycopg's OperationalError: a lost or refused connection.
    return module.startswith("psycopg") and type(exc).__name__ == "OperationalError"


@dataclass
class Health:
    """What a running worker reports about itself (read by /readyz and /metrics)."""

    name: str
    kind: str  # "relay" | "consumer"
    state: State = "starting"
    consecutive_failures: int = 0
    failures: int = 0
    last_error: str | None = None
    position: int = 0  # how far it got in its source's log
    lag: int | None = None  # public events in the store not yet handled (None: unknown)
    changed_at: float = field(default_factory=time.monotonic)

    def progressed(self, position: int) -> None:
        """The worker got further: a run of failures is over."""
        self.position = position
        if self.state != "running" or self.consecutive_failures:
            self.state = "running"
            self.consecutive_failures = 0
            self.changed_at = time.monotonic()

    def failed(self, exc: BaseException, *, fatal: bool) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.state = "stopped" if fatal else "retrying"
        self.changed_at = time.monotonic()
        metrics.WORKER_FAILURES.labels(self.kind, self.name).inc()

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "failures": self.failures,
            "last_error": self.last_error,
            "position": self.position,
            "lag": self.lag,
        }


async def supervise(
    health: Health,
    run: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
) -> None:
    """Run ``run`` until cancelled, restarting it after each non-fatal error."""
    backoff = backoff or Backoff()
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    while True:
        try:
            health.state = "running"
            await run()
            return  # only a bounded run (tests, commands) ends by itself
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the platform is stopping this worker
            # Nobody cancelled this task: a client library let a CancelledError out of a
            # lost connection (aiokafka does when a broker goes away). That is a failure to
            # retry, not a stop, or the worker would end silently.
            failure: Exception = ConnectionError(f"cancelled inside the worker: {exc!r}")
        except Fatal as exc:
            health.failed(exc, fatal=True)
            log.critical("%s stopped: %s", health.name, exc,
                         extra={"worker": health.name, "error": health.last_error})
            raise
        except Exception as exc:
            failure = exc
        health.failed(failure, fatal=False)
        delay = backoff.delay(health.consecutive_failures, rng)
        log.warning(
            "%s failed (%d in a row); restarting in %.1fs: %s",
            health.name, health.consecutive_failures, delay, health.last_error,
            exc_info=failure,
            extra={"worker": health.name, "consecutive_failures":
                   health.consecutive_failures, "error": health.last_error},
        )
        await asyncio.sleep(delay)
