"""Who senders and sessions are, from the accounts service (through its client only)."""

from __future__ import annotations

from typing import Any

from services.consult.application import Requester


class AccountsMembers:
    """The consult service's view of members: verified or not, plan terms, roles.

    ``accounts`` is the accounts client (``member_by_email`` answers a ``Member`` with
    its ``Plan``, whose ``consults_per_month`` and ``consult_answer_hours`` apply here).
    """

    def __init__(self, accounts: Any) -> None:
        self.accounts = accounts

    async def by_email(self, email: str) -> Requester | None:
        member = await self.accounts.member_by_email(email)
        return None if member is None else _requester(member)

    async def by_token(self, token: str | None) -> Requester | None:
        viewer = await self.accounts.viewer(token)
        if viewer.kind != "MEMBER" or not viewer.email:
            return None
        return await self.by_email(viewer.email)


def _requester(member: Any) -> Requester:
    plan = member.plan
    return Requester(viewer_id=str(member.viewer_id), email=member.email,
                     verified=bool(member.email_verified), plan=plan.name,
                     consults_per_month=plan.consults_per_month,
                     answer_hours=plan.consult_answer_hours, roles=tuple(member.roles))
