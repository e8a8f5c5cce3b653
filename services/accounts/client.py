"""How other code talks to the accounts service: a Protocol and its two implementations.

Other services (the lookup product's codePage resolver, for one) import this module and
``events.py`` only. Expected failures are ``AccountsFailure`` subclasses with a stable
``code``, raised alike by the in-process and the HTTP client.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from services.accounts import domain
from services.accounts.application import (
    ANONYMOUS,
    Accounts,
    PageAccess,
    SessionInfo,
    ViewerInfo,
)
from services.accounts.domain import AccountsFailure, InvalidCredentials
from services.shared import metrics
from services.shared.rpc import RemoteError, RpcClient

__all__ = [
    "ANONYMOUS",
    "AccountsClient",
    "AccountsFailure",
    "HttpAccounts",
    "LocalAccounts",
    "PageAccess",
    "SessionInfo",
    "ViewerInfo",
]


class AccountsClient(Protocol):
    async def start_guest_session(self, client_address: str | None) -> SessionInfo: ...

    async def register(self, token: str | None, email: str, password: str) -> SessionInfo:
        """Turn the token's guest into a member (a new member without a token)."""

    async def login(self, email: str, password: str) -> SessionInfo: ...

    async def logout(self, token: str | None) -> bool: ...

    async def viewer(self, token: str | None) -> ViewerInfo:
        """Who the token belongs to; ANONYMOUS for none, unknown, expired or revoked."""

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        """Decide (and record) whether the caller may see this code page in full."""

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo: ...


class LocalAccounts:
    """The in-process client: the embedded gateway and the accounts API use it.

    The Application is synchronous (and argon2 is deliberately slow), so every call
    runs in a worker thread.
    """

    def __init__(self, app: Accounts) -> None:
        self.app = app

    async def start_guest_session(self, client_address: str | None) -> SessionInfo:
        result: SessionInfo = await run_in_threadpool(self.app.start_guest_session,
                                                      client_address)
        return result

    async def register(self, token: str | None, email: str, password: str) -> SessionInfo:
        result: SessionInfo = await run_in_threadpool(self.app.register, token, email, password)
        return result

    async def login(self, email: str, password: str) -> SessionInfo:
        try:
            result: SessionInfo = await run_in_threadpool(self.app.login, email, password)
        except InvalidCredentials as failure:
            # Slow repeated guessing down without holding a worker thread.
            await asyncio.sleep(failure.delay)
            raise
        return result

    async def logout(self, token: str | None) -> bool:
        result: bool = await run_in_threadpool(self.app.logout, token)
        return result

    async def viewer(self, token: str | None) -> ViewerInfo:
        result: ViewerInfo = await run_in_threadpool(self.app.viewer, token)
        return result

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        result: PageAccess = await run_in_threadpool(self.app.open_code_page, token, system,
                                                     code)
        outcome = "locked" if result.locked else "spent" if result.spent else "open"
        metrics.METERING_OUTCOMES.labels(outcome).inc()
        return result

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        result: ViewerInfo = await run_in_threadpool(self.app.change_plan, viewer_id, plan,
                                                     reason, external_ref)
        return result


FAILURES: dict[str, type[AccountsFailure]] = {
    cls.__name__: cls
    for cls in vars(domain).values()
    if isinstance(cls, type) and issubclass(cls, AccountsFailure)
}


class HttpAccounts:
    """The client used when the accounts service runs as its own process (see api.py)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._rpc = RpcClient(base_url, token=token)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self._rpc.call(method, **kwargs)
        except RemoteError as error:
            raise FAILURES.get(error.type, AccountsFailure)(str(error)) from None

    async def start_guest_session(self, client_address: str | None) -> SessionInfo:
        return session_from(await self._call("start_guest_session",
                                             client_address=client_address))

    async def register(self, token: str | None, email: str, password: str) -> SessionInfo:
        return session_from(await self._call("register", token=token, email=email,
                                             password=password))

    async def login(self, email: str, password: str) -> SessionInfo:
        return session_from(await self._call("login", email=email, password=password))

    async def logout(self, token: str | None) -> bool:
        return bool(await self._call("logout", token=token))

    async def viewer(self, token: str | None) -> ViewerInfo:
        return ViewerInfo(**await self._call("viewer", token=token))

    async def open_code_page(self, token: str | None, system: str, code: str) -> PageAccess:
        return PageAccess(**await self._call("open_code_page", token=token, system=system,
                                             code=code))

    async def change_plan(
        self, viewer_id: str, plan: str, reason: str, external_ref: str | None = None
    ) -> ViewerInfo:
        return ViewerInfo(**await self._call("change_plan", viewer_id=viewer_id, plan=plan,
                                             reason=reason, external_ref=external_ref))

    async def close(self) -> None:
        await self._rpc.close()


def serialise(value: SessionInfo | ViewerInfo | PageAccess | bool) -> Any:
    """The JSON form the HTTP client reads back (see ``session_from``)."""
    if isinstance(value, bool):
        return value
    data = asdict(value)
    if isinstance(value, SessionInfo):
        data["expires_at"] = value.expires_at.isoformat()
    return data


def session_from(data: dict[str, Any]) -> SessionInfo:
    return SessionInfo(token=data["token"], expires_at=datetime.fromisoformat(data["expires_at"]),
                       viewer=ViewerInfo(**data["viewer"]))
