"""Turns for work that holds the event loop: first asked, first served, one a pass.

A search runs on the event loop for milliseconds without yielding. uvloop runs every
request it read in one poll back to back before it polls again, so a request that
arrives just after a poll waits for that whole batch, and then for its own: under 16
keep-alive connections to one serving process, the connections caught so took half as
long again as the others, every time (bench/throughput.py, first-time searches). Taking
turns, such work runs one piece a pass of the loop, in the order it asked, and the loop
reads what arrived in between: every connection waits for the same requests, those
before its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Turns:
    """``async with turns:`` runs its body when every body asked for before has run, and
    not in the same pass of the event loop as the one before it."""

    def __init__(self) -> None:
        self._taken = False
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if not self._taken and not self._waiting:
            self._taken = True
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed the turn, then cancelled
                self._pass_on()
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pass_on()

    def _pass_on(self) -> None:
        """The next turn, in the loop's next pass: after what it polls meanwhile."""
        asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # (one cancelled while waiting is passed over)
                waiter.set_result(None)
                return
        self._taken = False
