"""Who may ask CasePilot, through the accounts client: members only, so many questions a
day as their plan allows. The allowance itself is the accounts service's to keep."""

from __future__ import annotations

from services.accounts.client import AccountsClient
from services.assistant.application import Admission
from services.assistant.domain import Refusal, RefusalCode

SIGN_IN = "Sign in (or register, it is free) to ask CasePilot."


class AccountsMetering:
    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def admit(self, token: str | None) -> Admission:
        viewer = await self.accounts.viewer(token)
        if viewer.kind != "MEMBER" or viewer.id is None:
            return Admission(None, None, Refusal(RefusalCode.SIGN_IN_REQUIRED, SIGN_IN))
        return Admission(viewer.id, None)

    async def identify(self, token: str | None) -> str | None:
        viewer = await self.accounts.viewer(token)
        return viewer.id if viewer.kind == "MEMBER" else None
