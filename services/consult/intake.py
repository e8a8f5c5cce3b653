"""From a stored inbound message to a case: the service layer of inbound consult mail.

The SMTP listener only stores (see smtp.py). ``IntakeProjection`` (projections.py), a
consumer of the service's own ``ConsultMailReceived`` events, runs ``MailIntake.process``
for each stored message: it finds the sender among the members, continues the case the
message threads into or opens a new one (acknowledged at once with the automatic
answer), or records why not, which the mail policy answers. Processing is idempotent
(a message is handled once: the decision and the message's ``handled`` mark are one
save), so a redelivery or a restart in the middle changes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol
from uuid import UUID

from services.consult.application import AutoAnswer, Consults, Requester
from services.consult.domain import Refusal
from services.consult.failures import AllowanceUsed, EmailNotVerified, NoConsultsOnPlan
from services.consult.parsing import MailRefused, ParsedMail, parse
from services.consult.timeline import Channel, Citation, Status
from services.lookup.client import LookupClient
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)

class Members(Protocol):
    """Who a sender or a session is, as the consult service needs it (accounts behind)."""

    async def by_email(self, email: str) -> Requester | None: ...

    async def by_token(self, token: str | None) -> Requester | None: ...


class Answerer(Protocol):
    """The automatic part of an acknowledgement, for ``member``. ``request_id`` names
    the request when it may come again (a mailed question: its mail's id), so a retry
    gives the same answer without costing the member a second assistant question."""

    async def answer(self, subject: str, question: str, member: Requester,
                     about: dict[str, str] | None = None, request_id: str | None = None
                     ) -> AutoAnswer: ...


class MailIntake:
    def __init__(self, app: Consults, members: Members, answerer: Answerer) -> None:
        self.app = app
        self.members = members
        self.answerer = answerer

    async def store(self, raw: bytes, parsed: ParsedMail, mail_from: str,
                    recipients: list[str]) -> bool:
        """Store a message durably (the SMTP listener answers 250 after this returns)."""
        stored: bool = await run_in_threadpool(self.app.receive_mail, raw, parsed.message_id,
                                               mail_from, recipients)
        return stored

    async def process(self, mail_id: UUID) -> None:
        app = self.app
        mail = await run_in_threadpool(app.mail, mail_id)
        if mail is None or mail.handled:
            return
        try:
            parsed = await run_in_threadpool(parse, mail.raw)
        except MailRefused as refused:  # refused at SMTP time too; kept for old messages
            await run_in_threadpool(app.ignore_mail, mail_id, refused.reply)
            return
        if parsed.automatic:
            # Auto-replies, bounces and list mail are never answered: no mail loops.
            await run_in_threadpool(app.ignore_mail, mail_id, "automatic message")
            return
        sender = parsed.sender

        async def refuse(reason: Refusal, detail: str = "") -> None:
            await run_in_threadpool(app.refuse_mail, mail_id, sender, reason, detail)

        member = await self.members.by_email(sender)
        if member is None:
            await refuse(Refusal.UNKNOWN_SENDER)
            return
        if not member.verified:
            await refuse(Refusal.NOT_VERIFIED)
            return
        case = await run_in_threadpool(app.thread_case, parsed, member.viewer_id)
        if case is not None:
            if case.status == Status.CLOSED:
                await refuse(Refusal.CASE_CLOSED, str(case.number))
            elif not parsed.fresh and not parsed.attachments:
                await refuse(Refusal.EMPTY)
            else:
                await run_in_threadpool(app.reply_from_mail, mail_id, case.id, parsed, member)
            return
        if not parsed.fresh:
            await refuse(Refusal.EMPTY)
            return
        try:
            await run_in_threadpool(app.check_can_open, member)
            auto = await instant_answer(self.answerer, parsed.question_subject, parsed.fresh,
                                        member, request_id=str(mail_id))
            await run_in_threadpool(
                lambda: app.open_case(member, parsed.question_subject, parsed.fresh, auto,
                                      channel=Channel.EMAIL, message_id=parsed.message_id,
                                      attachments=parsed.attachments, mail_id=mail_id))
        except (AllowanceUsed, NoConsultsOnPlan) as failure:
            reason = (Refusal.ALLOWANCE_USED if isinstance(failure, AllowanceUsed)
                      else Refusal.NO_CONSULTS_ON_PLAN)
            await refuse(reason, str(failure))
        except EmailNotVerified:
            await refuse(Refusal.NOT_VERIFIED)


async def instant_answer(answerer: Answerer, subject: str, question: str, member: Requester,
                         about: dict[str, str] | None = None, request_id: str | None = None
                         ) -> AutoAnswer:
    """The automatic answer, or a note that there is none: the case opens either way."""
    try:
        return await answerer.answer(subject, question, member, about, request_id)
    except Exception:
        # The instant part is a courtesy; a failing assistant or search must not cost the
        # member their case. Logged with its traceback for the operator.
        log.exception("no automatic answer for a consult; acknowledged without one")
        return AutoAnswer("No automatic answer could be prepared this time; an expert "
                          "coder will answer your question.", [], "none")


class SearchAnswerer:
    """The top search results for the question, said as such (where CasePilot cannot
    answer: it is not installed, or it declined)."""

    NOTE = ("CasePilot, our assistant, is not available yet, so this automatic part lists "
            "the top code-search results for your question. It is not an expert's answer.")

    def __init__(self, lookup: LookupClient, limit: int = 5, note: str = NOTE) -> None:
        self.lookup = lookup
        self.limit = limit
        self.note = note

    async def answer(self, subject: str, question: str, member: Requester,
                     about: dict[str, str] | None = None, request_id: str | None = None
                     ) -> AutoAnswer:
        return await self.results(subject, question, about, self.note)

    async def results(self, subject: str, question: str, about: dict[str, str] | None,
                      note: str) -> AutoAnswer:
        """The top results, introduced by ``note`` (why this is what the member gets)."""
        found: list[Citation] = []
        seen: set[tuple[str, str]] = set()
        asked = [about["code"]] if about else []
        for query in [*asked, *_queries(subject, question)]:
            page = await self.lookup.search_codes(query, limit=self.limit)
            for item in page.items:
                key = (item.system, item.code)
                if key not in seen and len(found) < self.limit:
                    seen.add(key)
                    found.append(Citation(item.system, item.code, item.title))
            if len(found) >= self.limit:
                break
        if not found:
            text = f"{note}\n\nThe search found no codes for your question."
            return AutoAnswer(text, [], "search")
        lines = "\n".join(f"- {c.system} {c.code}: {c.title}" for c in found)
        return AutoAnswer(f"{note}\n\n{lines}", found, "search")


# How a coder asks, not what they ask about: "how do I code", "what is the ICD-10 code for".
# Left in, "code" reads as a clinical word (a code blue) to the search.
_ASKING = re.compile(
    r"^((how|what|which|whats|what's|do|does|did|should|would|could|can|i|we|you|is|are|"
    r"the|a|an|for|to|of|please|help|question|correct|right|proper|appropriate|"
    r"codes?|coded|coding|icd-?10(-?cm|-?pcs)?|cpt|hcpcs|use|report|assign|bill)\b[\s,:]*)+",
    re.IGNORECASE)


def _queries(subject: str, question: str) -> list[str]:
    """What to search for: the subject, then the question's first sentences, each without
    the words of asking."""
    wanted = []
    if subject and subject != "(no subject)":
        wanted.append(subject[:120])
    sentences = re.split(r"(?<=[a-z][a-z][.?!])\s+", question.replace("\n", " "))
    wanted.extend(sentence[:200] for sentence in sentences[:3])
    queries = []
    for text in wanted:
        query = " ".join(_ASKING.sub("", text.strip()).replace("?", " ").split())
        if query and query not in queries:
            queries.append(query)
    return queries
