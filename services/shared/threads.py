"""Blocking work in worker threads, tracked so that shutdown can wait for it.

Cancelling the task that awaits a worker thread does not stop the thread: it runs on,
perhaps inside an event store or an index whose connections the platform closes next
(with SQLite that can crash the process). Every blocking call of the platform goes
through ``run_in_threadpool`` here (the same signature as Starlette's), and
``Platform.stop`` awaits ``idle()`` before it closes any store.

A call whose awaiting task is cancelled before its thread started is abandoned: the
thread, when it gets to it, runs nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool as _starlette_run

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_in_flight: set[_Call] = set()


class _Call:
    __slots__ = ("abandoned", "started")

    def __init__(self) -> None:
        self.started = False
        self.abandoned = False


class Abandoned(Exception):
    """The call's awaiting task was cancelled before its thread began (never seen by it)."""


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    call = _Call()
    with _lock:
        _in_flight.add(call)

    def tracked() -> T:
        with _lock:
            if call.abandoned:
                raise Abandoned
            call.started = True
        try:
            return func(*args, **kwargs)
        finally:
            with _lock:
                _in_flight.discard(call)

    try:
        return await _starlette_run(tracked)
    except asyncio.CancelledError:
        with _lock:
            if not call.started:
                call.abandoned = True
                _in_flight.discard(call)
        raise


def busy() -> int:
    """How many calls are running in a thread or waiting for one."""
    with _lock:
        return len(_in_flight)


async def idle(timeout: float = 30.0) -> bool:
    """Wait until the calls running now have ended (or ``timeout`` passes); True when
    they have. Calls begun meanwhile are not waited for (another platform in the same
    process may keep starting them)."""
    with _lock:
        waiting = set(_in_flight)
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            if not waiting & _in_flight:
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
