"""The consult service's consumers of its own events.

``IntakeProjection`` turns each stored inbound message into a case, a reply on a case,
or a refusal (services/consult/intake.py decides); the mail policy (``mail_policy``)
records what those events mail in the platform's outbox (services/consult/mailing.py
composes). The cases' read side (a member's cases, the experts' queue) is kept by the
Application itself (``MemberConsults``, ``Queue``): exact right after each command,
which the acknowledgement and the queue need, at the few hundred open cases a queue has.
"""

from __future__ import annotations

from eventsourcing.persistence import Tracking, TrackingRecorder

from services.consult.intake import MailIntake
from services.consult.mailing import ConsultMail
from services.shared.bus import Delivery
from services.shared.mail import MailPolicy, Outbox
from services.shared.search.model import Checkpoint
from services.shared.threads import run_in_threadpool

RECEIVED = "ConsultMailReceived"


class IntakeProjection:
    """Runs ``MailIntake.process`` for each stored message, once, in log order.

    The checkpoint lives in the consult store's tracking table; processing is
    idempotent on its own, so a checkpoint written after the work is enough.
    """

    name = "consult-intake"

    def __init__(self, intake: MailIntake) -> None:
        self.intake = intake
        self._tracking: TrackingRecorder = intake.app.factory.tracking_recorder()

    async def checkpoint(self, source: str) -> Checkpoint | None:
        def read() -> Checkpoint | None:
            position = self._tracking.max_tracking_id(self.name)
            cursor = self._tracking.max_tracking_id(f"{self.name}@cursor")
            if position is None:
                return None
            return Checkpoint(self.name, source, position, cursor or position)

        found: Checkpoint | None = await run_in_threadpool(read)
        return found

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            if delivery.envelope.type == RECEIVED:
                await self.intake.process(delivery.envelope.aggregate_id)
        last = deliveries[-1]

        def track() -> None:
            self._tracking.insert_tracking(Tracking(self.name, last.envelope.position))
            self._tracking.insert_tracking(Tracking(f"{self.name}@cursor", last.cursor))

        await run_in_threadpool(track)


def mail_policy(outbox: Outbox, composer: ConsultMail) -> MailPolicy:
    """What the consult events mail, recorded with the policy's checkpoint in one write."""
    return MailPolicy("consult-mail", outbox, composer.compose)
