"""What the consult service mails, composed from its own events (the mail policy).

Run as ``MailPolicy("consult-mail", outbox, ConsultMail(...).compose)``: the outbox
records the messages with the policy's checkpoint in one transaction. Each message is
built from the case as it was at the event's version, and carries the Message-ID the
case recorded for it, so composing twice gives the same message and the outbox keeps
one. Answers thread under the member's last message (In-Reply-To, References) and keep
``[Case #<number>]`` in the subject; replies go to the consult mailbox (Reply-To).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.consult.application import Consults
from services.consult.domain import Consult, InboundMail, Refusal
from services.consult.parsing import MailRefused, parse
from services.consult.timeline import Direction, Message
from services.shared.envelope import Envelope
from services.shared.mail import MailMessage, message_id_for
from services.shared.threads import run_in_threadpool

AUTO_REPLIED = ("Auto-Submitted", "auto-replied")  # RFC 3834: autoresponders stay quiet


def case_subject(case: Consult) -> str:
    tagged = f"[Case #{case.number}] {case.subject}"
    return f"Re: {tagged}" if case.messages[0].message_id else tagged


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


class ConsultMail:
    def __init__(self, app: Consults, reply_to: str, site_url: str) -> None:
        self.app = app
        self.reply_to = reply_to
        self.site_url = site_url.rstrip("/")

    async def compose(self, envelope: Envelope) -> Sequence[MailMessage]:
        if envelope.type == "ConsultAcknowledged":
            case = await self._case(envelope)
            return [self.acknowledgement(case)]
        if envelope.type == "ConsultAnswered":
            case = await self._case(envelope)
            return [self.answer(case)]
        if envelope.type == "ConsultMailRefused":
            mail = await self._at(envelope)
            assert isinstance(mail, InboundMail)
            reply = self.refusal(mail, envelope)
            return [reply] if reply else []
        return []

    async def _at(self, envelope: Envelope) -> Any:
        return await run_in_threadpool(
            lambda: self.app.repository.get(envelope.aggregate_id,
                                            version=envelope.aggregate_version))

    async def _case(self, envelope: Envelope) -> Consult:
        case = await self._at(envelope)
        assert isinstance(case, Consult)
        return case

    def _threaded(self, case: Consult, sent: Message, text: str,
                  headers: tuple[tuple[str, str], ...] = ()) -> MailMessage:
        """A message on the case's thread: under the member's last message before it."""
        earlier = case.messages[:case.messages.index(sent)]
        member = [m for m in earlier if m.direction == Direction.IN and m.message_id]
        references = [m.message_id for m in earlier if m.message_id]
        parent = member[-1].message_id if member else (references[-1] if references else None)
        assert sent.message_id is not None
        return MailMessage(
            to=case.member_email, subject=case_subject(case), text=text,
            message_id=sent.message_id, in_reply_to=parent, references=references[-20:],
            headers=(("Reply-To", self.reply_to), *headers),
        )

    def acknowledgement(self, case: Consult) -> MailMessage:
        automatic = next(m for m in case.messages if m.automatic)
        if case.due_at is not None:
            due = (f"An expert coder will answer by {when(case.due_at)}, in this email "
                   "thread.")
        else:
            due = ("Your plan has no promised answer time; an expert coder will answer as "
                   "soon as they can, in this email thread.")
        citations = "\n".join(f"  {c.system} {c.code}: {c.title}"
                              + (f" (release {c.release})" if c.release else "")
                              for c in automatic.citations)
        text = (
            f"We have your question. Your case number is #{case.number}.\n\n"
            f"{due}\n"
            f"To add to your case, reply to this email (keep [Case #{case.number}] in the "
            "subject). Your cases are also listed under My consults.\n\n"
            "---- Automatic answer (CasePilot, not an expert's answer) ----\n\n"
            f"{automatic.body}\n"
            + (f"\nCitations:\n{citations}\n" if citations else "")
            + "\n---- End of the automatic answer ----\n"
        )
        return self._threaded(case, automatic, text, (AUTO_REPLIED,))

    def answer(self, case: Consult) -> MailMessage:
        answer = next(m for m in reversed(case.messages)
                      if m.direction == Direction.OUT and not m.automatic)
        text = (
            f"An expert coder answered your case #{case.number}:\n\n"
            f"{answer.body}\n\n"
            f"Reply to this email to ask a follow-up question on case #{case.number}.\n"
        )
        return self._threaded(case, answer, text)

    def refusal(self, mail: InboundMail, envelope: Envelope) -> MailMessage | None:
        try:
            parsed = parse(mail.raw)
        except MailRefused:
            return None  # nothing readable to answer (refused at SMTP time already)
        reason = Refusal(mail.refusal or Refusal.EMPTY)
        text = {
            Refusal.UNKNOWN_SENDER: (
                f"Thank you for writing to medcode's expert consults. We could not find a "
                f"medcode account for {parsed.sender}.\n\n"
                "To ask our expert coders a question: register at "
                f"{self.site_url}/register, verify your email address with the link we send "
                "you, and write again from that address. Your question was not kept."
            ),
            Refusal.NOT_VERIFIED: (
                "Thank you for your question. Please verify your email address first: use "
                "the link we sent when you registered, then write again. Your question was "
                "not kept."
            ),
            Refusal.NO_CONSULTS_ON_PLAN: mail.detail,
            Refusal.ALLOWANCE_USED: mail.detail,
            Refusal.CASE_CLOSED: (
                f"Case #{mail.detail} is closed. To ask something new, send a new email "
                f"(without [Case #{mail.detail}] in the subject) and it opens a new case."
            ),
            Refusal.EMPTY: (
                "Your message had no text we could read, so no case was opened. Please write "
                "your question in the body of the email."
            ),
        }[reason]
        subject = parsed.subject or "your message"
        return MailMessage(
            to=parsed.sender,
            subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
            text=text + "\n",
            message_id=message_id_for(f"{envelope.id}:refusal", self.app.mail_domain),
            in_reply_to=parsed.message_id, references=[*parsed.references[-19:],
                                                       parsed.message_id],
            headers=(("Reply-To", self.reply_to), AUTO_REPLIED),
        )
