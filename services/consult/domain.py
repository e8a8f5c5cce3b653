"""The consult domain: inbound mail, cases and their timeline, allowances. No I/O here.

A case (``Consult``) is one member's question and everything said about it, in order.
Every rule that must hold under concurrency lives on one aggregate: a case is claimed
by one expert (the case's version), a member's monthly allowance is counted on the
member's own aggregate, case numbers come from one counter, and an inbound message is
stored once per Message-ID (its aggregate id is derived from it).

Longer than 400 lines on purpose: it holds the aggregates (failures are in failures.py,
a case's status and timeline values in timeline.py), and each stored event's topic is
this module's path, which the event log and the public catalogue's topic filters read.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.consult.failures import AllowanceUsed, CaseClosed, ClaimedByAnother, NotOpen
from services.consult.timeline import (
    WAITING,
    Attachment,
    Channel,
    Citation,
    Direction,
    Message,
    Status,
)

NAMESPACE = UUID("9f1d6c1e-2b7a-4c55-9a0e-6d3f8e41c2b7")
CASEPILOT = "CasePilot"  # the author of automatic answers on the timeline
FIRST_CASE_NUMBER = 1001


def mail_id_for(message_id: str) -> UUID:
    return uuid5(NAMESPACE, f"mail:{message_id}")


def synthetic_message_id(raw: bytes) -> str:
    """A stable Message-ID for mail that came without one: the same bytes, the same id."""
    return f"<{hashlib.sha256(raw).hexdigest()}@no-message-id.invalid>"


class InboundMail(Aggregate):
    """One message as it arrived over SMTP, stored before we answered 250.

    Keyed by its Message-ID, so a retransmission (a sender's retry after a lost 250)
    is the same aggregate and is stored once. The message exactly as received (quoted
    history and attachments included) is kept by a second, private event saved with
    the first: the bus reads only public events, so up to 10 MiB of raw mail is never
    decoded just to tell a consumer that a message arrived.
    """

    class Received(Aggregate.Created):
        message_id: str
        mail_from: str
        recipients: list[str]
        size: int
        received_at: datetime

    class Kept(Aggregate.Event):
        raw: str  # base64 of the bytes as received

    class Processed(Aggregate.Event):
        case_id: UUID
        outcome: str  # "opened" | "replied"

    class Refused(Aggregate.Event):
        reason: str  # a Refusal value
        detail: str

    class Ignored(Aggregate.Event):
        reason: str

    @staticmethod
    def create_id(message_id: str, **_: Any) -> UUID:
        return mail_id_for(message_id)

    @classmethod
    def receive(cls, message_id: str, raw: bytes, mail_from: str, recipients: list[str],
                received_at: datetime) -> InboundMail:
        mail = cls(message_id=message_id, mail_from=mail_from, recipients=recipients,
                   size=len(raw), received_at=received_at)
        mail._kept(raw=base64.b64encode(raw).decode("ascii"))
        return mail

    @event(Received)
    def __init__(self, message_id: str, mail_from: str, recipients: list[str], size: int,
                 received_at: datetime) -> None:
        self.message_id = message_id
        self.mail_from = mail_from
        self.recipients = list(recipients)
        self.size = size
        self.received_at = received_at
        self.raw = b""
        self.outcome: str | None = None
        self.case_id: UUID | None = None
        self.refusal: str | None = None
        self.detail = ""

    @event(Kept)
    def _kept(self, raw: str) -> None:
        self.raw = base64.b64decode(raw)

    @property
    def handled(self) -> bool:
        return self.outcome is not None

    def processed(self, case_id: UUID, outcome: str) -> None:
        if not self.handled:
            self._processed(case_id=case_id, outcome=outcome)

    def refuse(self, reason: str, detail: str) -> None:
        if not self.handled:
            self._refused(reason=reason, detail=detail)

    def ignore(self, reason: str) -> None:
        if not self.handled:
            self._ignored(reason=reason)

    @event(Processed)
    def _processed(self, case_id: UUID, outcome: str) -> None:
        self.case_id = case_id
        self.outcome = outcome

    @event(Refused)
    def _refused(self, reason: str, detail: str) -> None:
        self.outcome = "refused"
        self.refusal = reason
        self.detail = detail

    @event(Ignored)
    def _ignored(self, reason: str) -> None:
        self.outcome = "ignored"
        self.detail = reason


class Refusal(StrEnum):
    """Why an inbound message opened no case; each is answered by a reply (see mailing)."""

    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    NOT_VERIFIED = "NOT_VERIFIED"
    NO_CONSULTS_ON_PLAN = "NO_CONSULTS_ON_PLAN"
    ALLOWANCE_USED = "ALLOWANCE_USED"
    CASE_CLOSED = "CASE_CLOSED"
    EMPTY = "EMPTY"


class ReplyQuota(Aggregate):
    """Replies to one sender address on one UTC day that opened no case.

    Anyone can put any address in From: without a cap, the consult mailbox would mail
    whatever address a forger names, as often as they like (backscatter).
    """

    @staticmethod
    def key_for(sender: str) -> str:
        """The sender as a digest: the quota needs no address in the clear."""
        return hashlib.sha256(sender.lower().encode()).hexdigest()

    @staticmethod
    def id_for(sender: str, day: str) -> UUID:
        return uuid5(NAMESPACE, f"replies:{ReplyQuota.key_for(sender)}|{day}")

    @staticmethod
    def create_id(key: str, day: str, **_: Any) -> UUID:
        return uuid5(NAMESPACE, f"replies:{key}|{day}")

    @event("Opened")
    def __init__(self, key: str, day: str) -> None:
        self.sent = 0

    def take(self, cap: int) -> bool:
        """Count one more reply; False when the day's cap is reached."""
        if self.sent >= cap:
            return False
        self._counted(sent=self.sent + 1)
        return True

    @event("Counted")
    def _counted(self, sent: int) -> None:
        self.sent = sent


class CaseNumbers(Aggregate):
    """The one counter case numbers come from: numbers are short, unique and in order."""

    ID = uuid5(NAMESPACE, "case-numbers")

    @event("Started")
    def __init__(self) -> None:
        self.last = FIRST_CASE_NUMBER - 1

    @classmethod
    def create_id(cls) -> UUID:
        return cls.ID

    def take(self) -> int:
        self._taken(number=self.last + 1)
        return self.last

    @event("Taken")
    def _taken(self, number: int) -> None:
        self.last = number


class MemberConsults(Aggregate):
    """A member's cases, newest last, and how many they opened in each month."""

    @staticmethod
    def id_for(viewer_id: str) -> UUID:
        return uuid5(NAMESPACE, f"member:{viewer_id}")

    @staticmethod
    def create_id(viewer_id: str, **_: Any) -> UUID:
        return MemberConsults.id_for(viewer_id)

    @event("Started")
    def __init__(self, viewer_id: str) -> None:
        self.viewer_id = viewer_id
        self.cases: list[UUID] = []
        self.monthly: dict[str, int] = {}

    def opened_in(self, month: str) -> int:
        return self.monthly.get(month, 0)

    def count(self, case_id: UUID, month: str, allowance: int | None) -> None:
        """Count a new case against the month's allowance (None = unlimited)."""
        if allowance is not None and self.opened_in(month) >= allowance:
            raise AllowanceUsed(allowance_message(allowance))
        self._case_opened(case_id=case_id, month=month)

    @event("CaseOpened")
    def _case_opened(self, case_id: UUID, month: str) -> None:
        self.cases.append(case_id)
        self.monthly[month] = self.monthly.get(month, 0) + 1


def allowance_message(allowance: int) -> str:
    if allowance == 0:
        return "Your plan has no expert consults: upgrade your plan to ask our experts."
    return (f"You have used all {allowance} expert consults of your plan this month: "
            "upgrade your plan, or write again next month.")


class Queue(Aggregate):
    """The cases waiting for an expert (open or claimed); the queue lists these."""

    ID = uuid5(NAMESPACE, "queue")

    @classmethod
    def create_id(cls) -> UUID:
        return cls.ID

    @event("Started")
    def __init__(self) -> None:
        self.waiting: list[UUID] = []

    def add(self, case_id: UUID) -> None:
        if case_id not in self.waiting:
            self._added(case_id=case_id)

    def remove(self, case_id: UUID) -> None:
        if case_id in self.waiting:
            self._removed(case_id=case_id)

    @event("Added")
    def _added(self, case_id: UUID) -> None:
        self.waiting.append(case_id)

    @event("Removed")
    def _removed(self, case_id: UUID) -> None:
        self.waiting.remove(case_id)


class Consult(Aggregate):
    """One member's question and its timeline: acknowledgement, claim, answers, replies."""

    class Requested(Aggregate.Created):
        number: int
        member_id: str
        member_email: str
        plan: str
        subject: str
        body: str
        channel: str
        message_id: str | None
        attachments: list[dict[str, Any]]
        about: dict[str, str] | None
        due_at: datetime | None
        requested_at: datetime

    class Acknowledged(Aggregate.Event):
        message_id: str
        text: str
        citations: list[dict[str, Any]]
        answer_source: str  # "assistant" | "search" | "none"
        at: datetime

    class Claimed(Aggregate.Event):
        expert_id: str
        expert_email: str
        at: datetime

    class Answered(Aggregate.Event):
        expert_id: str
        expert_email: str
        body: str
        message_id: str
        at: datetime

    class Replied(Aggregate.Event):
        body: str
        message_id: str | None
        attachments: list[dict[str, Any]]
        due_at: datetime | None
        at: datetime

    class Closed(Aggregate.Event):
        by: str  # viewer id of whoever closed it
        reason: str
        at: datetime

    @staticmethod
    def id_for(number: int) -> UUID:
        return uuid5(NAMESPACE, f"case:{number}")

    @staticmethod
    def create_id(number: int, **_: Any) -> UUID:
        return Consult.id_for(number)

    @event(Requested)
    def __init__(self, number: int, member_id: str, member_email: str, plan: str, subject: str,
                 body: str, channel: str, message_id: str | None,
                 attachments: list[dict[str, Any]], about: dict[str, str] | None,
                 due_at: datetime | None, requested_at: datetime) -> None:
        self.number = number
        self.member_id = member_id
        self.member_email = member_email
        self.plan = plan
        self.subject = subject
        self.channel = Channel(channel)
        self.about = about
        self.due_at = due_at
        self.requested_at = requested_at
        self.status = Status.OPEN
        self.expert_id: str | None = None
        self.expert_email: str | None = None
        self.acknowledged = False
        self.messages: list[Message] = [Message(
            Direction.IN, member_email, body, requested_at, message_id,
            attachments=tuple(Attachment.from_dict(a) for a in attachments),
        )]

    # --- decisions ----------------------------------------------------------------

    def acknowledge(self, message_id: str, text: str, citations: list[Citation],
                    answer_source: str, at: datetime) -> None:
        if not self.acknowledged:
            self._acknowledged(message_id=message_id, text=text,
                               citations=[c.to_dict() for c in citations],
                               answer_source=answer_source, at=at)

    def claim(self, expert_id: str, expert_email: str, at: datetime) -> bool:
        """Claim the case for an expert; False when they hold it already."""
        if self.status not in WAITING:
            raise NotOpen(f"Case #{self.number} is {self.status.lower()}: there is nothing "
                          "to claim.")
        if self.expert_id == expert_id and self.status == Status.CLAIMED:
            return False
        if self.status == Status.CLAIMED:
            raise ClaimedByAnother(f"Case #{self.number} is claimed by another expert.")
        self._claimed(expert_id=expert_id, expert_email=expert_email, at=at)
        return True

    def answer(self, expert_id: str, expert_email: str, body: str, message_id: str,
               at: datetime) -> None:
        """Answer as the claiming expert; an open case is claimed by answering it."""
        if self.status == Status.OPEN:
            self.claim(expert_id, expert_email, at)
        elif self.status != Status.CLAIMED:
            raise NotOpen(f"Case #{self.number} is {self.status.lower()}: the member has "
                          "not written since the last answer.")
        elif self.expert_id != expert_id:
            raise ClaimedByAnother(f"Case #{self.number} is claimed by another expert.")
        self._answered(expert_id=expert_id, expert_email=expert_email, body=body,
                       message_id=message_id, at=at)

    def reply(self, body: str, message_id: str | None, attachments: list[Attachment],
              due_at: datetime | None, at: datetime) -> None:
        """The member writes again; an answered case goes back to its expert."""
        if self.status == Status.CLOSED:
            raise CaseClosed(f"Case #{self.number} is closed: write a new email to open a "
                             "new case.")
        self._replied(body=body, message_id=message_id,
                      attachments=[a.to_dict() for a in attachments],
                      due_at=due_at if self.status == Status.ANSWERED else self.due_at, at=at)

    def close(self, by: str, reason: str, at: datetime) -> bool:
        if self.status == Status.CLOSED:
            return False
        self._closed(by=by, reason=reason, at=at)
        return True

    # --- what the events do -------------------------------------------------------

    @event(Acknowledged)
    def _acknowledged(self, message_id: str, text: str, citations: list[dict[str, Any]],
                      answer_source: str, at: datetime) -> None:
        self.acknowledged = True
        self.messages.append(Message(
            Direction.OUT, CASEPILOT, text, at, message_id, automatic=True,
            citations=tuple(Citation.from_dict(c) for c in citations),
        ))

    @event(Claimed)
    def _claimed(self, expert_id: str, expert_email: str, at: datetime) -> None:
        self.status = Status.CLAIMED
        self.expert_id = expert_id
        self.expert_email = expert_email

    @event(Answered)
    def _answered(self, expert_id: str, expert_email: str, body: str, message_id: str,
                  at: datetime) -> None:
        self.status = Status.ANSWERED
        self.messages.append(Message(Direction.OUT, expert_email, body, at, message_id))

    @event(Replied)
    def _replied(self, body: str, message_id: str | None, attachments: list[dict[str, Any]],
                 due_at: datetime | None, at: datetime) -> None:
        if self.status == Status.ANSWERED:
            self.status = Status.CLAIMED if self.expert_id else Status.OPEN
        self.due_at = due_at
        self.messages.append(Message(
            Direction.IN, self.member_email, body, at, message_id,
            attachments=tuple(Attachment.from_dict(a) for a in attachments),
        ))

    @event(Closed)
    def _closed(self, by: str, reason: str, at: datetime) -> None:
        self.status = Status.CLOSED

    # --- reading ------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        return self.status in WAITING

    def overdue(self, now: datetime) -> bool:
        return self.waiting and self.due_at is not None and self.due_at < now

    @property
    def thread_ids(self) -> list[str]:
        """Every Message-ID of the thread, oldest first (for References)."""
        return [m.message_id for m in self.messages if m.message_id]

    @property
    def last_from_member(self) -> Message:
        return next(m for m in reversed(self.messages) if m.direction == Direction.IN)
