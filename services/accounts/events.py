"""The events the accounts service publishes (schemas under schema/events/accounts/).

Payloads never carry an email address, a password hash, a session or mailed token or a
client address: sessions, email claims, mailed tokens and address quotas stay private
to the service's own store, and personal fields there are sealed (keys.py). A mail
request publishes its ``request_id``; only the holder of the server secret can derive
the token from it (tokens.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.accounts.domain import LoginGuard, QuestionAllowance, Viewer
from services.shared.publishing import EventCatalogue

CATALOGUE = EventCatalogue(source="accounts")


def _id(value: UUID | None) -> str | None:
    return str(value) if value is not None else None


def _time(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@CATALOGUE.publish(Viewer.GuestStarted, "GuestStarted", 1)
def guest_started(event: Any) -> dict[str, Any]:
    return {"kind": "guest", "plan": event.plan}


# v1 carried the email in clear; v2 carries none (ask member() when you need it).
@CATALOGUE.publish(Viewer.Registered, "ViewerRegistered", 2)
def viewer_registered(event: Any) -> dict[str, Any]:
    return {"kind": "member", "plan": event.plan}


@CATALOGUE.publish(Viewer.VerificationRequested, "EmailVerificationRequested", 1)
def verification_requested(event: Any) -> dict[str, Any]:
    return {"request_id": str(event.request_id), "expires_at": _time(event.expires_at),
            "reason": event.reason}


@CATALOGUE.publish(Viewer.EmailVerified, "EmailVerified", 1)
def email_verified(event: Any) -> dict[str, Any]:
    return {}


@CATALOGUE.publish(Viewer.EmailChanged, "EmailChanged", 1)
def email_changed(event: Any) -> dict[str, Any]:
    return {}


@CATALOGUE.publish(Viewer.PasswordResetRequested, "PasswordResetRequested", 1)
def password_reset_requested(event: Any) -> dict[str, Any]:
    return {"request_id": str(event.request_id), "expires_at": _time(event.expires_at)}


@CATALOGUE.publish(Viewer.PasswordChanged, "PasswordChanged", 1)
def password_changed(event: Any) -> dict[str, Any]:
    return {"reason": event.reason}


@CATALOGUE.publish(Viewer.CodePageUnlocked, "CodePageUnlocked", 1)
def code_page_unlocked(event: Any) -> dict[str, Any]:
    return {"system": event.system, "code": event.code, "used": event.used,
            "limit": event.limit}


@CATALOGUE.publish(Viewer.PlanChanged, "PlanChanged", 1)
def plan_changed(event: Any) -> dict[str, Any]:
    return {"from_plan": event.from_plan, "to_plan": event.to_plan, "reason": event.reason,
            "external_ref": event.external_ref}


@CATALOGUE.publish(Viewer.RoleGranted, "RoleGranted", 1)
def role_granted(event: Any) -> dict[str, Any]:
    return {"role": event.role}


@CATALOGUE.publish(Viewer.RoleRevoked, "RoleRevoked", 1)
def role_revoked(event: Any) -> dict[str, Any]:
    return {"role": event.role}


@CATALOGUE.publish(Viewer.Deleted, "ViewerDeleted", 1)
def viewer_deleted(event: Any) -> dict[str, Any]:
    return {"reason": event.reason}


@CATALOGUE.publish(QuestionAllowance.QuestionTaken, "AssistantQuestionTaken", 1)
def assistant_question_taken(event: Any) -> dict[str, Any]:
    return {"used": event.used, "limit": event.limit}


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
