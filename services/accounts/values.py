"""What the accounts service answers with: viewers, sessions, decisions on code pages
and assistant questions, members as other services see them. Frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.accounts.plans import Plan

ViewerKind = Literal["ANONYMOUS", "GUEST", "MEMBER"]


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int | None  # None = unlimited

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


@dataclass(frozen=True)
class ViewerInfo:
    """Who is asking, as everyone outside this service sees it."""

    kind: ViewerKind
    plan: str  # "none" for anonymous callers
    used: int
    limit: int | None  # None = unlimited
    email: str | None = None
    id: str | None = None
    email_verified: bool = False
    roles: tuple[str, ...] = ()
    questions_used: int = 0  # assistant questions today (UTC)
    questions_limit: int | None = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def assistant_questions(self) -> Quota:
        return Quota(self.questions_used, self.questions_limit)


ANONYMOUS = ViewerInfo(kind="ANONYMOUS", plan="none", used=0, limit=0)


@dataclass(frozen=True)
class SessionInfo:
    token: str  # shown once; only its hash is stored
    expires_at: datetime
    viewer: ViewerInfo


@dataclass(frozen=True)
class PageAccess:
    """The decision on one code page for one viewer."""

    locked: bool
    spent: bool  # a view was spent on this request (first unlock of this page)
    remaining: int | None  # after this request; None = unlimited
    next_step: str | None = None  # what unlocks the page, when locked


@dataclass(frozen=True)
class Member:
    """A registered account as other services see it (consults: is the sender a
    verified member, on which plan, an expert?)."""

    viewer_id: str
    email: str
    email_verified: bool
    plan: Plan
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionAllowed:
    quota: Quota  # after this question


@dataclass(frozen=True)
class QuestionRefused:
    code: Literal["SIGN_IN_REQUIRED", "QUOTA_EXCEEDED"]
    message: str
    quota: Quota | None = None  # None for anonymous callers


QuestionOutcome = QuestionAllowed | QuestionRefused


@dataclass(frozen=True)
class MailRequest:
    """What the mail policy needs to write one mail (see mail.py); never published."""

    to: str
    token: str | None = None
    current: bool = True  # False when a newer request superseded this one
