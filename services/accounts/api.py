"""The accounts service's own HTTP app, for when it runs as its own process.

Internal only: it trusts the gateway for the caller's client address.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from services.accounts.client import LocalAccounts, serialise
from services.accounts.domain import AccountsFailure
from services.shared.rpc import Method, rpc_app

METHODS = ("start_guest_session", "register", "login", "logout", "viewer", "open_code_page",
           "change_plan")


def create_app(accounts: LocalAccounts) -> Starlette:
    def expose(name: str) -> Method:
        method = getattr(accounts, name)

        async def call(**kwargs: Any) -> Any:
            return serialise(await method(**kwargs))

        return call

    return rpc_app({name: expose(name) for name in METHODS}, expected=(AccountsFailure,))
