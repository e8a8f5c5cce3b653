"""The events the accounts service publishes (schemas under schema/events/accounts/).

Payloads never carry password hashes, session tokens or client addresses: sessions,
email claims and guest quotas stay private to the service's own store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.accounts.domain import LoginGuard, Viewer
from services.shared.publishing import EventCatalogue

CATALOGUE = EventCatalogue(source="accounts")


def _id(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


def _time(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@CATALOGUE.publish(Viewer.GuestStarted, "GuestStarted", 1)
def guest_started(event: Any) -> dict[str, Any]:
    return {"kind": "guest", "plan": event.plan}


@CATALOGUE.publish(Viewer.Registered, "ViewerRegistered", 1)
def viewer_registered(event: Any) -> dict[str, Any]:
    return {"kind": "member", "email": event.email, "plan": event.plan}


@CATALOGUE.publish(Viewer.CodePageUnlocked, "CodePageUnlocked", 1)
def code_page_unlocked(event: Any) -> dict[str, Any]:
    return {"system": event.system, "code": event.code, "used": event.used,
            "limit": event.limit}


@CATALOGUE.publish(Viewer.PlanChanged, "PlanChanged", 1)
def plan_changed(event: Any) -> dict[str, Any]:
    return {"from_plan": event.from_plan, "to_plan": event.to_plan, "reason": event.reason,
            "external_ref": event.external_ref}


# Login events belong to the per-email guard; viewer_id is null when the email has no
# account (it is throttled all the same, so that a lock reveals nothing).
@CATALOGUE.publish(LoginGuard.LoginFailed, "LoginFailed", 1)
def login_failed(event: Any) -> dict[str, Any]:
    return {"viewer_id": _id(event.viewer_id), "failures": event.failures}


@CATALOGUE.publish(LoginGuard.Locked, "AccountLocked", 1)
def account_locked(event: Any) -> dict[str, Any]:
    return {"viewer_id": _id(event.viewer_id), "until": _time(event.until),
            "lock_number": event.lock_number, "failures": event.failures}


@CATALOGUE.publish(LoginGuard.Unlocked, "AccountUnlocked", 1)
def account_unlocked(event: Any) -> dict[str, Any]:
    return {"viewer_id": _id(event.viewer_id), "reason": event.reason,
            "locked_until": _time(event.locked_until)}
