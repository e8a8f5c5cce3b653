"""A mail policy: a consumer that turns one source's events into messages.

The product gives it a ``compose`` function (envelope -> messages); the policy records
what a batch composed together with its checkpoint, in one outbox transaction, so the
consumer runner's usual resume-and-skip makes every event mail once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.shared.bus import Delivery
from services.shared.envelope import Envelope
from services.shared.mail.message import MailMessage
from services.shared.mail.outbox import Outbox
from services.shared.search.model import Checkpoint

Compose = Callable[[Envelope], Awaitable[Sequence[MailMessage]]]


class MailPolicy:
    """Implements the consumer runner's ``Projection`` protocol over an outbox."""

    def __init__(self, name: str, outbox: Outbox, compose: Compose) -> None:
        self.name = name
        self.outbox = outbox
        self.compose = compose

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return await self.outbox.checkpoint(self.name, source)

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        messages: list[MailMessage] = []
        for delivery in deliveries:
            messages.extend(await self.compose(delivery.envelope))
        last = deliveries[-1]
        await self.outbox.record(
            messages, Checkpoint(self.name, source, last.envelope.position, last.cursor)
        )
