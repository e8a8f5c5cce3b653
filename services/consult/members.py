"""Who senders and sessions are, from the accounts service (through its client only)."""

from __future__ import annotations

from services.accounts.client import AccountsClient, Member
from services.consult.application import Requester


class AccountsMembers:
    """The consult service's view of members: verified or not, plan terms, roles.

    The accounts client answers a ``Member`` with its ``Plan``, whose
    ``consults_per_month`` and ``consult_answer_hours`` are the consult terms.
    """

    def __init__(self, accounts: AccountsClient) -> None:
        self.accounts = accounts

    async def by_email(self, email: str) -> Requester | None:
        member = await self.accounts.member_by_email(email)
        return None if member is None else _requester(member)

    async def by_token(self, token: str | None) -> Requester | None:
        viewer = await self.accounts.viewer(token)
        if viewer.kind != "MEMBER" or viewer.id is None:
            return None
        member = await self.accounts.member(viewer.id)
        return None if member is None else _requester(member)


def _requester(member: Member) -> Requester:
    plan = member.plan
    return Requester(viewer_id=member.viewer_id, email=member.email,
                     verified=member.email_verified, plan=plan.name,
                     consults_per_month=plan.consults_per_month,
                     answer_hours=plan.consult_answer_hours, roles=tuple(member.roles))
