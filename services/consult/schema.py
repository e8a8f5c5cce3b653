"""GraphQL types of the consult product (names as in the public contract)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from services.consult import client as consult
from services.lookup.schema import CodeRefInput
from services.shared.graphql import ActionResult


@strawberry.enum
class ConsultStatus(Enum):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    ANSWERED = "ANSWERED"
    CLOSED = "CLOSED"


@strawberry.enum
class MessageDirection(Enum):
    IN = "IN"
    OUT = "OUT"


@strawberry.type
class ConsultCitation:
    system: str
    code: str
    title: str
    release: str


@strawberry.type
class ConsultMessage:
    direction: MessageDirection
    author: str = strawberry.field(description='an email address or "CasePilot"')
    body: str = strawberry.field(description="quoted history removed (the raw mail keeps it)")
    sent_at: datetime
    automatic: bool = strawberry.field(description="written by CasePilot, not by an expert")
    attachments: list[str] = strawberry.field(description="listed, never opened")
    citations: list[ConsultCitation]

    @classmethod
    def of(cls, message: consult.MessageView) -> ConsultMessage:
        return cls(direction=MessageDirection(message.direction), author=message.author,
                   body=message.body, sent_at=message.sent_at, automatic=message.automatic,
                   attachments=message.attachments,
                   citations=[ConsultCitation(system=c["system"], code=c["code"],
                                              title=c["title"], release=c.get("release", ""))
                              for c in message.citations])


@strawberry.type
class Consult:
    id: strawberry.ID
    case_number: str = strawberry.field(
        description='as it appears in email subjects: "[Case #<caseNumber>]"')
    subject: str
    status: ConsultStatus
    due_at: datetime | None = strawberry.field(description="null when the plan has no SLA")
    overdue: bool = strawberry.field(description="waiting for an expert past its due time")
    requested_at: datetime
    claimed_by_me: bool
    messages: list[ConsultMessage]

    @classmethod
    def of(cls, view: consult.ConsultView) -> Consult:
        return cls(id=strawberry.ID(view.id), case_number=view.case_number,
                   subject=view.subject, status=ConsultStatus(view.status), due_at=view.due_at,
                   overdue=view.overdue, requested_at=view.requested_at,
                   claimed_by_me=view.claimed_by_me,
                   messages=[ConsultMessage.of(m) for m in view.messages])


ConsultResult = Annotated[Consult | ActionResult, strawberry.union("ConsultResult")]


@strawberry.input
class RequestConsultInput:
    subject: str
    body: str
    about: CodeRefInput | None = None


@strawberry.input
class AnswerConsultInput:
    consult_id: strawberry.ID
    body: str
