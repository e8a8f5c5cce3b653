"""Who may ask CasePilot, through the accounts client: members only, so many questions a
day as their plan allows. The allowance itself is the accounts service's to keep."""

from __future__ import annotations

from services.accounts.client import AccountsClient, QuestionRefused
from services.assistant.application import Admission
from services.assistant.domain import Refusal, RefusalCode


class AccountsMetering:
    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def admit(self, token: str | None) -> Admission:
        outcome = await self.accounts.take_assistant_question(token)
        if isinstance(outcome, QuestionRefused):
            return _refused(outcome)
        viewer = await self.accounts.viewer(token)
        if viewer.id is None:  # the session ended between the two calls
            return Admission(None, outcome.quota, Refusal(
                RefusalCode.SIGN_IN_REQUIRED, "Register or log in to ask the assistant."))
        return Admission(viewer.id, outcome.quota)

    async def admit_member(self, viewer_id: str) -> Admission:
        outcome = await self.accounts.take_member_assistant_question(viewer_id)
        if isinstance(outcome, QuestionRefused):
            return _refused(outcome)
        return Admission(viewer_id, outcome.quota)

    async def identify(self, token: str | None) -> str | None:
        viewer = await self.accounts.viewer(token)
        return viewer.id if viewer.kind == "MEMBER" else None


def _refused(outcome: QuestionRefused) -> Admission:
    return Admission(None, outcome.quota, Refusal(RefusalCode(outcome.code), outcome.message))
