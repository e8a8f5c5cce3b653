"""The events the consult service publishes (schemas under schema/events/consult/).

Payloads name people by viewer id, never by email address, and carry no message text:
questions are often case notes, and the event log travels further (Kafka, exports,
analysts) than the service's own store, which keeps the text and the raw mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.consult.domain import Consult, InboundMail
from services.shared.publishing import EventCatalogue

CATALOGUE = EventCatalogue(source="consult")


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@CATALOGUE.publish(InboundMail.Received, "ConsultMailReceived", 1)
def mail_received(event: Any) -> dict[str, Any]:
    return {"size": event.size, "recipients": len(event.recipients),
            "received_at": _time(event.received_at)}


@CATALOGUE.publish(InboundMail.Refused, "ConsultMailRefused", 1)
def mail_refused(event: Any) -> dict[str, Any]:
    return {"reason": event.reason}


@CATALOGUE.publish(Consult.Requested, "ConsultRequested", 1)
def consult_requested(event: Any) -> dict[str, Any]:
    return {"case_number": event.number, "viewer_id": event.member_id, "plan": event.plan,
            "channel": event.channel, "attachments": len(event.attachments),
            "about": event.about, "due_at": _time(event.due_at)}


@CATALOGUE.publish(Consult.Acknowledged, "ConsultAcknowledged", 1)
def consult_acknowledged(event: Any) -> dict[str, Any]:
    return {"answer_source": event.answer_source,
            "citations": [{"system": c["system"], "code": c["code"]} for c in event.citations]}


@CATALOGUE.publish(Consult.Claimed, "ConsultClaimed", 1)
def consult_claimed(event: Any) -> dict[str, Any]:
    return {"expert_id": event.expert_id}


@CATALOGUE.publish(Consult.Answered, "ConsultAnswered", 1)
def consult_answered(event: Any) -> dict[str, Any]:
    return {"expert_id": event.expert_id}


@CATALOGUE.publish(Consult.Replied, "ConsultReplied", 1)
def consult_replied(event: Any) -> dict[str, Any]:
    return {"channel": "email" if event.message_id else "web",
            "attachments": len(event.attachments), "due_at": _time(event.due_at)}


@CATALOGUE.publish(Consult.Closed, "ConsultClosed", 1)
def consult_closed(event: Any) -> dict[str, Any]:
    return {"closed_by": event.by, "reason": event.reason}
