"""GraphQL types of the accounts product (names as in the public contract)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from services.accounts import client as accounts


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

    @classmethod
    def of(cls, viewer: accounts.ViewerInfo) -> Viewer:
        return cls(
            id=strawberry.ID(viewer.id) if viewer.id else None,
            kind=ViewerKind(viewer.kind),
            email=viewer.email,
            plan=viewer.plan,
            code_page_views=Quota(used=viewer.used, limit=viewer.limit,
                                  remaining=viewer.remaining),
        )


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
                    "EMAIL_TAKEN, INVALID_CREDENTIALS, ACCOUNT_LOCKED, ALREADY_REGISTERED, BUSY"
    )
    message: str


AuthResult = Annotated[SessionPayload | AuthError, strawberry.union("AuthResult")]


@strawberry.input
class RegisterInput:
    email: str
    password: str


@strawberry.input
class LoginInput:
    email: str
    password: str
