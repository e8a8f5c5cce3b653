"""The consult service's commands: store inbound mail, open cases, claim, answer, reply.

Each command loads its aggregates, decides, and saves them in one transaction; when a
concurrent writer saved one of them first the store refuses the save and the command
runs again on fresh state (a case is claimed once, an allowance is never overspent,
case numbers never repeat).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.consult.domain import (
    CaseNumbers,
    Consult,
    InboundMail,
    MemberConsults,
    Queue,
    Refusal,
    ReplyQuota,
    allowance_message,
    mail_id_for,
)
from services.consult.failures import (
    AllowanceUsed,
    Busy,
    ConsultNotFound,
    EmailNotVerified,
    InvalidConsult,
    NoConsultsOnPlan,
    NotAnExpert,
    SignInRequired,
)
from services.consult.parsing import ParsedMail
from services.consult.timeline import Attachment, Channel, Citation
from services.shared.aggregates import Retrier, get_aggregate

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
Clock = Callable[[], datetime]

EXPERT = "expert"
MAX_SUBJECT = 300
MAX_BODY = 100_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Requester:
    """Who asks, as the consult service needs to know them (from the accounts service)."""

    viewer_id: str
    email: str
    verified: bool
    plan: str
    consults_per_month: int | None  # None = unlimited, 0 = none
    answer_hours: int | None  # None = no answer time promised
    roles: tuple[str, ...] = ()

    @property
    def expert(self) -> bool:
        return EXPERT in self.roles


@dataclass(frozen=True)
class AutoAnswer:
    """The instant part of the acknowledgement, marked automatic wherever it is shown."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    source: str = "none"  # "assistant" | "search" | "none"


@dataclass(frozen=True)
class Opened:
    case_id: UUID
    number: int


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


class Consults(Application[UUID]):
    """Inbound consult mail, cases and their timelines."""

    name = "consult"
    snapshotting_intervals = {Queue: 100, MemberConsults: 100, CaseNumbers: 100}

    def __init__(self, env: dict[str, str] | None = None, *, mail_domain: str = "medcode.localhost",
                 replies_per_sender_per_day: int = 5, clock: Clock = utcnow) -> None:
        super().__init__(env=env)
        self.mail_domain = mail_domain
        self.replies_per_sender_per_day = replies_per_sender_per_day
        self.clock = clock
        self._retrier = Retrier(lambda: Busy(
            "Too many simultaneous changes to this case: please try again."))
        self._ours = re.compile(rf"^<consult-(\d+)-\d+@{re.escape(mail_domain)}>$", re.IGNORECASE)

    # --- inbound mail ---------------------------------------------------------------

    def receive_mail(self, raw: bytes, message_id: str, mail_from: str,
                     recipients: list[str]) -> bool:
        """Store a message as received; False when its Message-ID was stored before."""
        mail_id = mail_id_for(message_id)
        if self._get(InboundMail, mail_id) is not None:
            return False
        mail = InboundMail.receive(message_id, raw, mail_from[:300], recipients, self.clock())
        try:
            self.save(mail)
        except IntegrityError:
            return False  # the same message, stored a moment ago by a parallel session
        return True

    def mail(self, mail_id: UUID) -> InboundMail | None:
        return self._get(InboundMail, mail_id)

    def refuse_mail(self, mail_id: UUID, sender: str, reason: Refusal, detail: str) -> bool:
        """Record why a message opened no case (the mail policy answers it); at most
        ``replies_per_sender_per_day`` answers a day to one address, then silence.
        False when the message was set aside without an answer."""

        def attempt() -> bool:
            mail = self._get(InboundMail, mail_id)
            if mail is None or mail.handled:
                return mail is not None and mail.refusal is not None
            day = self.clock().astimezone(UTC).date().isoformat()
            quota = (self._get(ReplyQuota, ReplyQuota.id_for(sender, day))
                     or ReplyQuota(key=ReplyQuota.key_for(sender), day=day))
            if quota.take(self.replies_per_sender_per_day):
                mail.refuse(reason.value, detail)
                self.save(mail, quota)
                return True
            mail.ignore(f"{reason.value}: no more replies to this sender today")
            self.save(mail)
            return False

        return self._retry(attempt)

    def ignore_mail(self, mail_id: UUID, reason: str) -> None:
        self._settle(mail_id, lambda mail: mail.ignore(reason))

    def _settle(self, mail_id: UUID, decide: Callable[[InboundMail], None]) -> None:
        def attempt() -> None:
            mail = self._get(InboundMail, mail_id)
            if mail is None or mail.handled:
                return
            decide(mail)
            self.save(mail)

        self._retry(attempt)

    def thread_case(self, parsed: ParsedMail, viewer_id: str) -> Consult | None:
        """The member's case a message continues: by its threading headers, then by the
        case number in its subject. Another member's case is never continued."""
        candidates: list[int | UUID] = []
        for ref in (*parsed.in_reply_to, *reversed(parsed.references)):
            ours = self._ours.match(ref)
            if ours:
                candidates.append(int(ours.group(1)))
            else:
                earlier = self._get(InboundMail, mail_id_for(ref))
                if earlier is not None and earlier.case_id is not None:
                    candidates.append(earlier.case_id)
        if parsed.case_number is not None:
            candidates.append(parsed.case_number)
        for candidate in candidates:
            case_id = candidate if isinstance(candidate, UUID) else Consult.id_for(candidate)
            case = self._get(Consult, case_id)
            if case is not None and case.member_id == viewer_id:
                return case
        return None

    def reply_from_mail(self, mail_id: UUID, case_id: UUID, parsed: ParsedMail,
                        requester: Requester) -> None:
        """Add the member's emailed reply to their case (once per message)."""

        def attempt() -> None:
            mail, case = self._get(InboundMail, mail_id), self._get(Consult, case_id)
            if mail is None or mail.handled or case is None:
                return
            now = self.clock()
            case.reply(parsed.fresh[:MAX_BODY], parsed.message_id, list(parsed.attachments),
                       self._due(requester, now), now)
            mail.processed(case.id, "replied")
            self.save(mail, case, *self._queued(case))

        self._retry(attempt)

    # --- opening a case ---------------------------------------------------------------

    def check_can_open(self, requester: Requester) -> None:
        """Raise the reason the member cannot open a case now (read before costly work)."""
        if not requester.verified:
            raise EmailNotVerified("Verify your email address first: use the link we sent "
                                   "when you registered.")
        allowance = requester.consults_per_month
        if allowance == 0:
            raise NoConsultsOnPlan(allowance_message(0))
        member = self._get(MemberConsults, MemberConsults.id_for(requester.viewer_id))
        if allowance is not None and member is not None and \
                member.opened_in(month_of(self.clock())) >= allowance:
            raise AllowanceUsed(allowance_message(allowance))

    def open_case(self, requester: Requester, subject: str, body: str, auto: AutoAnswer, *,
                  channel: Channel, message_id: str | None = None,
                  attachments: tuple[Attachment, ...] = (), about: dict[str, str] | None = None,
                  mail_id: UUID | None = None) -> Opened:
        """A new case, acknowledged at once with ``auto``; counted against the allowance."""
        subject = " ".join(subject.split())[:MAX_SUBJECT]
        body = body.strip()
        if not body:
            raise InvalidConsult("Write your question: the message has no text.")
        if len(body) > MAX_BODY:
            raise InvalidConsult(f"The question is longer than {MAX_BODY} characters.")
        if requester.consults_per_month == 0:
            raise NoConsultsOnPlan(allowance_message(0))
        if not requester.verified:
            raise EmailNotVerified("Verify your email address first.")

        def attempt() -> Opened:
            mail = self._get(InboundMail, mail_id) if mail_id else None
            if mail is not None and mail.handled:
                assert mail.case_id is not None
                return Opened(mail.case_id, self._number(mail.case_id))
            now = self.clock()
            numbers = self._get(CaseNumbers, CaseNumbers.ID) or CaseNumbers()
            number = numbers.take()
            member = (self._get(MemberConsults, MemberConsults.id_for(requester.viewer_id))
                      or MemberConsults(viewer_id=requester.viewer_id))
            case_id = Consult.id_for(number)
            member.count(case_id, month_of(now), requester.consults_per_month)
            case = Consult(number=number, member_id=requester.viewer_id,
                           member_email=requester.email, plan=requester.plan,
                           subject=subject or "(no subject)", body=body, channel=channel.value,
                           message_id=message_id, attachments=[a.to_dict() for a in attachments],
                           about=about, due_at=self._due(requester, now), requested_at=now)
            case.acknowledge(self.message_id(case), auto.text, auto.citations, auto.source, now)
            changed: list[Aggregate] = [numbers, member, case, *self._queued(case)]
            if mail is not None:
                mail.processed(case_id, "opened")
                changed.append(mail)
            self.save(*changed)
            return Opened(case_id, number)

        return self._retry(attempt)

    # --- experts ---------------------------------------------------------------------

    def claim(self, expert: Requester, case_id: UUID) -> Consult:
        _must_be_expert(expert)

        def attempt() -> Consult:
            case = self._case(case_id)
            if case.claim(expert.viewer_id, expert.email, self.clock()):
                self.save(case)
            return case

        return self._retry(attempt)

    def answer(self, expert: Requester, case_id: UUID, body: str) -> Consult:
        _must_be_expert(expert)
        body = body.strip()
        if not body:
            raise InvalidConsult("Write the answer: it is empty.")
        if len(body) > MAX_BODY:
            raise InvalidConsult(f"The answer is longer than {MAX_BODY} characters.")

        def attempt() -> Consult:
            case = self._case(case_id)
            case.answer(expert.viewer_id, expert.email, body, self.message_id(case),
                        self.clock())
            self.save(case, *self._queued(case))
            return case

        return self._retry(attempt)

    def close_case(self, closer: Requester, case_id: UUID, reason: str) -> Consult:
        """Close a case: its member or an expert may."""

        def attempt() -> Consult:
            case = self._case(case_id)
            if closer.viewer_id != case.member_id and not closer.expert:
                raise ConsultNotFound(f"No case {case_id}.")
            if case.close(closer.viewer_id, reason[:300], self.clock()):
                self.save(case, *self._queued(case))
            return case

        return self._retry(attempt)

    # --- queries ---------------------------------------------------------------------

    def consult(self, case_id: UUID) -> Consult | None:
        return self._get(Consult, case_id)

    def member_consults(self, viewer_id: str) -> list[Consult]:
        """The member's cases, newest first."""
        member = self._get(MemberConsults, MemberConsults.id_for(viewer_id))
        if member is None:
            return []
        return [c for case_id in reversed(member.cases) if (c := self._get(Consult, case_id))]

    def queue(self, expert: Requester) -> list[Consult]:
        """Open and claimed cases, soonest due first (cases without a due time last)."""
        _must_be_expert(expert)
        queue = self._get(Queue, Queue.ID)
        cases = [c for case_id in (queue.waiting if queue else [])
                 if (c := self._get(Consult, case_id)) is not None and c.waiting]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(cases, key=lambda c: (c.due_at or far, c.number))

    def waiting_counts(self) -> tuple[int, int]:
        """Cases waiting for an expert, and how many of them are overdue."""
        queue = self._get(Queue, Queue.ID)
        now = self.clock()
        cases = [c for case_id in (queue.waiting if queue else [])
                 if (c := self._get(Consult, case_id)) is not None and c.waiting]
        return len(cases), sum(1 for c in cases if c.overdue(now))

    def message_id(self, case: Consult) -> str:
        """The Message-ID of the next message we send on ``case``, derived from the case
        and its version, so the mail it leads to is the same however often it is built."""
        return f"<consult-{case.number}-{case.version + 1}@{self.mail_domain}>"

    # --- helpers ---------------------------------------------------------------------

    def _due(self, requester: Requester, now: datetime) -> datetime | None:
        hours = requester.answer_hours
        return None if hours is None else now + timedelta(hours=hours)

    def _queued(self, case: Consult) -> list[Aggregate]:
        """The queue, changed when the case's status moved it in or out (else nothing)."""
        queue = self._get(Queue, Queue.ID) or Queue()
        if case.waiting:
            queue.add(case.id)
        else:
            queue.remove(case.id)
        return [queue] if queue.pending_events else []

    def _number(self, case_id: UUID) -> int:
        return self._case(case_id).number

    def _case(self, case_id: UUID) -> Consult:
        case = self._get(Consult, case_id)
        if case is None:
            raise ConsultNotFound(f"No case {case_id}.")
        return case

    def _get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        return get_aggregate(self, cls, aggregate_id)

    def _retry(self, attempt: Callable[[], T]) -> T:
        return self._retrier(attempt)


def _must_be_expert(viewer: Requester | None) -> None:
    if viewer is None:
        raise SignInRequired("Sign in as an expert to work on consults.")
    if not viewer.expert:
        raise NotAnExpert("Only experts may work on the consult queue.")
