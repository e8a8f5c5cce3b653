"""The accounts service's own HTTP app, for when it runs as its own process.

Internal only: it trusts the gateway for the caller's client address, and answers only
callers holding MEDCODE_SERVICE_TOKEN (see ``medcode service``).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from services.accounts.client import LocalAccounts, serialise
from services.accounts.failures import AccountsFailure
from services.shared.rpc import Method, rpc_app

METHODS = ("start_guest_session", "register", "login", "logout", "viewer", "open_code_page",
           "change_plan", "member_by_email", "member", "take_assistant_question",
           "take_member_assistant_question", "verify_email", "resend_verification",
           "request_password_reset", "reset_password", "change_password", "change_email",
           "export_data", "delete_account", "upgrade", "plans", "link_billing",
           "viewer_by_billing_customer")


def create_app(accounts: LocalAccounts) -> Starlette:
    def expose(name: str) -> Method:
        method = getattr(accounts, name)

        async def call(**kwargs: Any) -> Any:
            return serialise(await method(**kwargs))

        return call

    return rpc_app({name: expose(name) for name in METHODS}, expected=(AccountsFailure,))
