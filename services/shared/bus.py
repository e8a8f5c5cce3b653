"""The bus between a service's event log and the consumers of its events.

Two implementations share this interface: ``LogBus`` (embedded, in-process, reading
the source's own event store so nothing is lost across restarts) and ``KafkaBus``
(distributed, one topic per service). Delivery is at-least-once; consumers dedupe
by ``(source, position)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.shared.envelope import Envelope


@dataclass(frozen=True)
class Delivery:
    """An envelope plus the bus's own resume point for it.

    ``cursor`` is what a consumer stores to resume after this delivery: the Kafka
    offset when distributed, the log position when embedded.
    """

    envelope: Envelope
    cursor: int


class Bus(Protocol):
    async def publish(self, source: str, envelopes: Sequence[Envelope]) -> None:
        """Return only once every envelope is durably on the bus, in the given order."""

    def deliveries(
        self,
        source: str,
        *,
        group: str,
        after_cursor: int | None,
        after_position: int | None = None,
    ) -> AsyncIterator[list[Delivery]]:
        """Yield batches of deliveries after ``after_cursor``, in order, forever.

        ``after_position`` is the position of the event at ``after_cursor``, when known:
        a bus that finds a different event there (its log was rewritten) starts again
        from its beginning rather than trust the cursor; consumers dedupe by position.
        """

    async def last_position(self, source: str) -> int | None:
        """Position of the newest event the bus holds for ``source`` (0: none), or None
        when the bus is the source's store itself and cannot lose anything."""

    async def holds_whole_log(self, source: str, first_position: int) -> bool:
        """Whether the bus can prove it still holds every event of ``source`` from
        ``first_position`` (the first public event in the store) on."""

    async def close(self) -> None: ...


def topic_for(source: str, prefix: str = "medcode") -> str:
    return f"{prefix}.{source}.events"
