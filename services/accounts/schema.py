"""GraphQL types of the accounts product (names as in the public contract)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from services.accounts import client as accounts
from services.shared.graphql import ActionResult


@strawberry.enum
class ViewerKind(Enum):
    ANONYMOUS = "ANONYMOUS"
    GUEST = "GUEST"
    MEMBER = "MEMBER"


@strawberry.type
class Quota:
    used: int
    limit: int | None = strawberry.field(description="null = unlimited")
    remaining: int | None = strawberry.field(description="null = unlimited")

    @classmethod
    def of(cls, quota: accounts.Quota) -> Quota:
        return cls(used=quota.used, limit=quota.limit, remaining=quota.remaining)


@strawberry.type
class Viewer:
    id: strawberry.ID | None = strawberry.field(
        description="stable id of a guest or member (e.g. for a payment provider); null "
                    "when anonymous"
    )
    kind: ViewerKind
    email: str | None
    plan: str = strawberry.field(description='e.g. "guest", "free", "pro"; "none" if anonymous')
    code_page_views: Quota
    email_verified: bool = strawberry.field(
        description="the free plan's extra code-page views come with a verified email")
    roles: list[str] = strawberry.field(description='e.g. "expert", "admin"')
    assistant_questions: Quota = strawberry.field(description="per UTC day, from the plan")

    @classmethod
    def of(cls, viewer: accounts.ViewerInfo) -> Viewer:
        return cls(
            id=strawberry.ID(viewer.id) if viewer.id else None,
            kind=ViewerKind(viewer.kind),
            email=viewer.email,
            plan=viewer.plan,
            code_page_views=Quota(used=viewer.used, limit=viewer.limit,
                                  remaining=viewer.remaining),
            email_verified=viewer.email_verified,
            roles=list(viewer.roles),
            assistant_questions=Quota.of(viewer.assistant_questions),
        )


@strawberry.type(description="A plan of the catalogue (configuration: MEDCODE_PLANS).")
class Plan:
    name: str
    price: str
    code_page_views: int | None = strawberry.field(description="in total; null = unlimited")
    assistant_questions_per_day: int | None = strawberry.field(description="null = unlimited")
    consults_per_month: int | None = strawberry.field(description="null = unlimited")
    consult_answer_hours: int | None = strawberry.field(description="null = no promise")
    buyable: bool = strawberry.field(description="upgrade(plan) gives a checkout page")

    @classmethod
    def of(cls, plan: accounts.Plan) -> Plan:
        return cls(name=plan.name, price=plan.price, code_page_views=plan.code_page_views,
                   assistant_questions_per_day=plan.assistant_questions_per_day,
                   consults_per_month=plan.consults_per_month,
                   consult_answer_hours=plan.consult_answer_hours,
                   buyable=plan.checkout_url is not None)


@strawberry.type
class SessionPayload:
    token: str = strawberry.field(description='send as "Authorization: Bearer <token>"')
    expires_at: datetime
    viewer: Viewer

    @classmethod
    def of(cls, session: accounts.SessionInfo) -> SessionPayload:
        return cls(token=session.token, expires_at=session.expires_at,
                   viewer=Viewer.of(session.viewer))


@strawberry.type
class AuthError:
    code: str = strawberry.field(
        description="machine-readable: INVALID_EMAIL, WEAK_PASSWORD, PASSWORD_TOO_LONG, "
                    "EMAIL_TAKEN, INVALID_CREDENTIALS, ACCOUNT_LOCKED, TOO_MANY_ATTEMPTS, "
                    "REGISTRATION_LIMIT, ALREADY_REGISTERED, SIGN_IN_REQUIRED, BUSY"
    )
    message: str


AuthResult = Annotated[SessionPayload | AuthError, strawberry.union("AuthResult")]


@strawberry.type
class CheckoutLink:
    url: str = strawberry.field(description="the payment provider's checkout page")


UpgradeResult = Annotated[CheckoutLink | ActionResult, strawberry.union("UpgradeResult")]


@strawberry.input
class RegisterInput:
    email: str
    password: str


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class ChangeEmailInput:
    password: str
    new_email: str
