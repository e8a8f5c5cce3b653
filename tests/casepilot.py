"""A small, real CasePilot for tests: ICD-10-CM chapter 4 (endocrine: E11.65 and its
family) of the shipped release in a SQLite store and a tantivy index, the accounts
service on SQLite with plans a test chooses, and the assistant's own service layer over
them, in-process. Imported and indexed in a few seconds, so unit and integration tests
can ask real questions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from services.accounts.application import Accounts
from services.accounts.client import LocalAccounts
from services.accounts.domain import PlanCatalogue
from services.accounts.plans import DEFAULT_PLANS, Plan
from services.accounts.policy import AccountsPolicy
from services.assistant.application import Assistant, Conversations
from services.assistant.citations import ReleaseBook
from services.assistant.client import LocalAssistant
from services.assistant.composer import OfflineComposer
from services.assistant.events import CATALOGUE as ASSISTANT_EVENTS
from services.assistant.metering import AccountsMetering
from services.lookup.application import CodeSets
from services.lookup.client import LocalLookup
from services.lookup.domain import CodeEntry
from services.lookup.search.documents import CODES
from services.shared.search.embedded import TantivyCatalog
from services.shared.settings import Settings
from tests.assistant.conftest import index_store
from tests.conftest import chapters
from tests.integration.test_accounts_metering import mailed_token

# A plan with consults and one assistant question a day: the second question is over.
TIGHT = Plan("tight", "test", code_page_views=6, assistant_questions_per_day=1,
             consults_per_month=10, consult_answer_hours=48)


@dataclass(frozen=True)
class Member:
    viewer_id: str
    token: str  # a session of theirs, to read their counts the way the site does


@dataclass
class Stack:
    lookup: LocalLookup
    accounts: Accounts
    conversations: Conversations
    assistant: LocalAssistant

    def member(self, email: str, plan: str = "pro") -> Member:
        """A verified member on ``plan``."""
        session = self.accounts.register(None, email, "a long passphrase")
        viewer_id = session.viewer.id
        assert viewer_id is not None
        self.accounts.change_plan(viewer_id, plan, "test")
        self.accounts.verify_email(mailed_token(self.accounts, viewer_id))
        return Member(viewer_id, session.token)

    def questions_used(self, member: Member) -> int:
        """Today's assistant questions of a member, as accounts counts them."""
        return self.accounts.viewer(member.token).assistant_questions.used

    def conversation_events(self, member: Member) -> list[str]:
        return conversation_events(self.conversations, member.viewer_id)


def conversation_events(conversations: Conversations, viewer_id: str) -> list[str]:
    """The types of the events CasePilot published for a member's conversations."""
    theirs: set[UUID] = set()
    types = []
    for envelope in ASSISTANT_EVENTS.iterate(conversations):
        if envelope.type == "ConversationStarted" and \
                envelope.payload["viewer_id"] == viewer_id:
            theirs.add(envelope.aggregate_id)
        if envelope.aggregate_id in theirs:
            types.append(envelope.type)
    return types


@asynccontextmanager
async def casepilot(root: Path, release: tuple[str, list[CodeEntry]]
                    ) -> AsyncIterator[Stack]:
    version, entries = release
    store = Settings(mode="embedded", data_dir=root)
    codes = CodeSets(env=store.event_store_env("lookup"))
    codes.import_release("ICD10CM", version, "test", chapters(entries, "4"))
    await index_store(codes, root / "search")
    catalog = TantivyCatalog(root / "search", CODES)
    lookup = LocalLookup(codes, catalog)
    accounts = Accounts(env=store.event_store_env("accounts"),
                        policy=AccountsPolicy(PlanCatalogue((*DEFAULT_PLANS, TIGHT)),
                                              login_failure_delay=0.0))
    conversations = Conversations(env=store.event_store_env("assistant"))
    assistant = Assistant(conversations, AccountsMetering(LocalAccounts(accounts)),
                          OfflineComposer(lookup, ReleaseBook(lookup)))
    try:
        yield Stack(lookup, accounts, conversations, LocalAssistant(assistant))
    finally:
        await catalog.close()
        for app in (conversations, accounts, codes):
            app.close()
