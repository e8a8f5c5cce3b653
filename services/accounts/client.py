"""How other code talks to the accounts service: a Protocol and its two implementations.

Other services import this module and ``events.py`` only:

- lookup (code pages): ``viewer``, ``open_code_page``;
- the assistant: ``take_assistant_question(token) -> QuestionAllowed | QuestionRefused``
  (refused with code SIGN_IN_REQUIRED or QUOTA_EXCEEDED; counted per UTC day), and
  ``take_member_assistant_question(viewer_id)``, the same count for a member a trusted
  service acts for (a consult mailed in: no session);
- consults: ``member_by_email(email) -> Member | None`` (``viewer_id``, ``email``,
  ``email_verified``, ``plan`` as a typed ``Plan``, ``roles``) and ``member(viewer_id)``.

Expected failures are ``AccountsFailure`` subclasses with a stable ``code``, raised
alike by the in-process and the HTTP client.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any, Protocol

from services.accounts import failures, metrics
from services.accounts.application import Accounts
from services.accounts.failures import AccountsFailure, InvalidCredentials
from services.accounts.plans import Plan
from services.accounts.values import (
    ANONYMOUS,
    Member,
    PageAccess,
    QuestionAllowed,
    QuestionOutcome,
    QuestionRefused,
    Quota,
    SessionInfo,
    ViewerInfo,
)
from services.shared.rpc import RpcClient, failures_in
from services.shared.threads import run_in_threadpool

__all__ = [
    "ANONYMOUS",
    "AccountsClient",
    "AccountsFailure",
    "HttpAccounts",
    "LocalAccounts",
    "Member",
    "PageAccess",
    "Plan",
    "QuestionAllowed",
    "QuestionOutcome",
    "QuestionRefused",
    "Quota",
    "SessionInfo",
    "ViewerInfo",
]


class AccountsClient(Protocol):
    async def start_guest_session(self, client_address: str | None) -> SessionInfo: ...

    async def register(self, token: str | None, email: str, password: str,
                       client_address: str | None = None) -> SessionInfo:
        """Turn the token's guest into a member (a new member without a token)."""

    async def login(self, email: str, password: str,
                    client_address: str | None = None) -> SessionInfo: ...

    async def logout(self, token: str | None) -> bool: ...

    async def viewer(self, token: str | None) -> ViewerInfo:
        """Who the token belongs to; ANONYMOUS for none, unknown, expired or revoked."""

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        """Decide (and record) whether the caller may see this code page in full."""

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo: ...

    async def member_by_email(self, email: str) -> Member | None:
        """The registered, undeleted account of this email (any case), or None."""

    async def member(self, viewer_id: str) -> Member | None: ...

    async def take_assistant_question(self, token: str | None) -> QuestionOutcome:
        """Count one question against the caller's daily allowance, or refuse."""

    async def take_member_assistant_question(self, viewer_id: str) -> QuestionOutcome:
        """The same, for the member ``viewer_id`` (trusted service callers only: the
        service API answers holders of the service token)."""

    async def verify_email(self, token: str) -> ViewerInfo: ...

    async def resend_verification(self, token: str | None) -> ViewerInfo: ...

    async def request_password_reset(self, email: str) -> None: ...

    async def reset_password(self, token: str, new_password: str) -> ViewerInfo: ...

    async def change_password(self, token: str | None, current_password: str,
                              new_password: str) -> SessionInfo: ...

    async def change_email(self, token: str | None, password: str,
                           new_email: str) -> ViewerInfo: ...

    async def export_data(self, token: str | None) -> dict[str, Any]: ...

    async def delete_account(self, token: str | None, password: str) -> None: ...

    async def upgrade(self, token: str | None, plan: str) -> str:
        """The checkout URL for ``plan`` (NO_CHECKOUT when it cannot be bought)."""

    async def plans(self) -> list[Plan]: ...

    async def link_billing(self, viewer_id: str, customer: str) -> None: ...

    async def viewer_by_billing_customer(self, customer: str) -> str | None: ...


class LocalAccounts:
    """The in-process client: the embedded gateway and the accounts API use it.

    The Application is synchronous (and argon2 is deliberately slow), so every call
    runs in a worker thread.
    """

    def __init__(self, app: Accounts) -> None:
        self.app = app

    async def start_guest_session(self, client_address: str | None) -> SessionInfo:
        return await run_in_threadpool(self.app.start_guest_session, client_address)

    async def register(self, token: str | None, email: str, password: str,
                       client_address: str | None = None) -> SessionInfo:
        return await run_in_threadpool(self.app.register, token, email, password,
                                       client_address)

    async def login(self, email: str, password: str,
                    client_address: str | None = None) -> SessionInfo:
        try:
            return await run_in_threadpool(self.app.login, email, password, client_address)
        except InvalidCredentials as failure:
            # Slow repeated guessing down without holding a worker thread.
            await asyncio.sleep(failure.delay)
            raise

    async def logout(self, token: str | None) -> bool:
        return await run_in_threadpool(self.app.logout, token)

    async def viewer(self, token: str | None) -> ViewerInfo:
        return await run_in_threadpool(self.app.viewer, token)

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        result: PageAccess = await run_in_threadpool(self.app.open_code_page, token, system,
                                                     code)
        outcome = "locked" if result.locked else "spent" if result.spent else "open"
        metrics.METERING_OUTCOMES.labels(outcome).inc()
        return result

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        return await run_in_threadpool(self.app.change_plan, viewer_id, plan, reason,
                                       external_ref)

    async def member_by_email(self, email: str) -> Member | None:
        return await run_in_threadpool(self.app.member_by_email, email)

    async def member(self, viewer_id: str) -> Member | None:
        return await run_in_threadpool(self.app.member, viewer_id)

    async def take_assistant_question(self, token: str | None) -> QuestionOutcome:
        return await run_in_threadpool(self.app.take_assistant_question, token)

    async def take_member_assistant_question(self, viewer_id: str) -> QuestionOutcome:
        return await run_in_threadpool(self.app.take_member_assistant_question, viewer_id)

    async def verify_email(self, token: str) -> ViewerInfo:
        return await run_in_threadpool(self.app.verify_email, token)

    async def resend_verification(self, token: str | None) -> ViewerInfo:
        return await run_in_threadpool(self.app.resend_verification, token)

    async def request_password_reset(self, email: str) -> None:
        await run_in_threadpool(self.app.request_password_reset, email)

    async def reset_password(self, token: str, new_password: str) -> ViewerInfo:
        return await run_in_threadpool(self.app.reset_password, token, new_password)

    async def change_password(self, token: str | None, current_password: str,
                              new_password: str) -> SessionInfo:
        return await run_in_threadpool(self.app.change_password, token, current_password,
                                       new_password)

    async def change_email(self, token: str | None, password: str,
                           new_email: str) -> ViewerInfo:
        return await run_in_threadpool(self.app.change_email, token, password, new_email)

    async def export_data(self, token: str | None) -> dict[str, Any]:
        return await run_in_threadpool(self.app.export_data, token)

    async def delete_account(self, token: str | None, password: str) -> None:
        await run_in_threadpool(self.app.delete_account, token, password)

    async def upgrade(self, token: str | None, plan: str) -> str:
        return await run_in_threadpool(self.app.upgrade, token, plan)

    async def plans(self) -> list[Plan]:
        return self.app.plans()

    async def link_billing(self, viewer_id: str, customer: str) -> None:
        await run_in_threadpool(self.app.link_billing, viewer_id, customer)

    async def viewer_by_billing_customer(self, customer: str) -> str | None:
        return await run_in_threadpool(self.app.viewer_by_billing_customer, customer)


class HttpAccounts:
    """The client used when the accounts service runs as its own process (see api.py)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._rpc = RpcClient(base_url, token=token, failure=AccountsFailure,
                              failures=failures_in(failures, AccountsFailure))
        self._call = self._rpc.call

    async def start_guest_session(self, client_address: str | None) -> SessionInfo:
        return session_from(await self._call("start_guest_session",
                                             client_address=client_address))

    async def register(self, token: str | None, email: str, password: str,
                       client_address: str | None = None) -> SessionInfo:
        return session_from(await self._call("register", token=token, email=email,
                                             password=password, client_address=client_address))

    async def login(self, email: str, password: str,
                    client_address: str | None = None) -> SessionInfo:
        return session_from(await self._call("login", email=email, password=password,
                                             client_address=client_address))

    async def logout(self, token: str | None) -> bool:
        return bool(await self._call("logout", token=token))

    async def viewer(self, token: str | None) -> ViewerInfo:
        return viewer_from(await self._call("viewer", token=token))

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        return PageAccess(**await self._call("open_code_page", token=token, system=system,
                                             code=code))

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        return viewer_from(await self._call("change_plan", viewer_id=viewer_id, plan=plan,
                                            reason=reason, external_ref=external_ref))

    async def member_by_email(self, email: str) -> Member | None:
        return member_from(await self._call("member_by_email", email=email))

    async def member(self, viewer_id: str) -> Member | None:
        return member_from(await self._call("member", viewer_id=viewer_id))

    async def take_assistant_question(self, token: str | None) -> QuestionOutcome:
        return outcome_from(await self._call("take_assistant_question", token=token))

    async def take_member_assistant_question(self, viewer_id: str) -> QuestionOutcome:
        return outcome_from(await self._call("take_member_assistant_question",
                                             viewer_id=viewer_id))

    async def verify_email(self, token: str) -> ViewerInfo:
        return viewer_from(await self._call("verify_email", token=token))

    async def resend_verification(self, token: str | None) -> ViewerInfo:
        return viewer_from(await self._call("resend_verification", token=token))

    async def request_password_reset(self, email: str) -> None:
        await self._call("request_password_reset", email=email)

    async def reset_password(self, token: str, new_password: str) -> ViewerInfo:
        return viewer_from(await self._call("reset_password", token=token,
                                            new_password=new_password))

    async def change_password(self, token: str | None, current_password: str,
                              new_password: str) -> SessionInfo:
        return session_from(await self._call("change_password", token=token,
                                             current_password=current_password,
                                             new_password=new_password))

    async def change_email(self, token: str | None, password: str,
                           new_email: str) -> ViewerInfo:
        return viewer_from(await self._call("change_email", token=token, password=password,
                                            new_email=new_email))

    async def export_data(self, token: str | None) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("export_data", token=token)
        return data

    async def delete_account(self, token: str | None, password: str) -> None:
        await self._call("delete_account", token=token, password=password)

    async def upgrade(self, token: str | None, plan: str) -> str:
        return str(await self._call("upgrade", token=token, plan=plan))

    async def plans(self) -> list[Plan]:
        return [Plan(**p) for p in await self._call("plans")]

    async def link_billing(self, viewer_id: str, customer: str) -> None:
        await self._call("link_billing", viewer_id=viewer_id, customer=customer)

    async def viewer_by_billing_customer(self, customer: str) -> str | None:
        found = await self._call("viewer_by_billing_customer", customer=customer)
        return str(found) if found else None

    async def close(self) -> None:
        await self._rpc.close()


def serialise(value: Any) -> Any:
    """The JSON form of a result, which the HTTP client reads back (``*_from``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: serialise(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [serialise(v) for v in value]
    if isinstance(value, dict):
        return {k: serialise(v) for k, v in value.items()}
    return value


def viewer_from(data: dict[str, Any]) -> ViewerInfo:
    return ViewerInfo(**{**data, "roles": tuple(data.get("roles") or ())})


def member_from(data: dict[str, Any] | None) -> Member | None:
    if data is None:
        return None
    return Member(viewer_id=data["viewer_id"], email=data["email"],
                  email_verified=data["email_verified"], plan=Plan(**data["plan"]),
                  roles=tuple(data["roles"]))


def outcome_from(data: dict[str, Any]) -> QuestionOutcome:
    quota = Quota(**data["quota"]) if data.get("quota") else None
    if "code" in data:
        return QuestionRefused(data["code"], data["message"], quota)
    assert quota is not None
    return QuestionAllowed(quota)


def session_from(data: dict[str, Any]) -> SessionInfo:
    return SessionInfo(token=data["token"], expires_at=datetime.fromisoformat(data["expires_at"]),
                       viewer=viewer_from(data["viewer"]))
