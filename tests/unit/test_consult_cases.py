"""The consult application's rules: allowances, claims, answers, replies, threading, queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.consult.application import AutoAnswer, Consults, Requester
from services.consult.failures import (
    AllowanceUsed,
    CaseClosed,
    ClaimedByAnother,
    EmailNotVerified,
    NoConsultsOnPlan,
    NotAnExpert,
    NotOpen,
)
from services.consult.parsing import parse
from services.consult.timeline import Channel, Status


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def member(viewer_id: str = "v-ann", allowance: int | None = 2, hours: int | None = 24,
           verified: bool = True, roles: tuple[str, ...] = ()) -> Requester:
    return Requester(viewer_id, f"{viewer_id}@example.org", verified, "pro", allowance, hours,
                     roles)


EVE = member("v-eve", roles=("expert",))
MAX = member("v-max", roles=("expert",))
AUTO = AutoAnswer("Maybe A41.51.", [], "search")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(clock: Clock) -> Consults:
    return Consults(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def open_case(app: Consults, who: Requester, subject: str = "Sepsis", **kw: object) -> int:
    return app.open_case(who, subject, "Which code?", AUTO, channel=Channel.WEB,
                         **kw).number  # type: ignore[arg-type]


def test_a_case_is_acknowledged_at_once_with_its_due_time(app: Consults, clock: Clock) -> None:
    number = open_case(app, member())
    case = app.consult(app.member_consults("v-ann")[0].id)
    assert case is not None and case.number == number == 1001
    assert case.due_at == clock.now + timedelta(hours=24)
    assert [m.automatic for m in case.messages] == [False, True]
    assert case.messages[1].message_id == "<consult-1001-2@medcode.localhost>"


def test_the_monthly_allowance_is_counted_and_resets_next_month(app: Consults,
                                                                clock: Clock) -> None:
    ann = member()
    open_case(app, ann)
    open_case(app, ann)
    with pytest.raises(AllowanceUsed, match="all 2 expert consults"):
        app.check_can_open(ann)
    with pytest.raises(AllowanceUsed):
        open_case(app, ann)
    clock.now += timedelta(days=31)
    assert open_case(app, ann) == 1003
    with pytest.raises(NoConsultsOnPlan):
        open_case(app, member("v-fay", allowance=0))
    with pytest.raises(EmailNotVerified):
        app.check_can_open(member("v-gus", verified=False))
    for _ in range(5):
        open_case(app, member("v-pro", allowance=None))  # unlimited


def test_one_expert_claims_an_answer_claims_and_a_reply_goes_back_to_the_expert(
        app: Consults) -> None:
    case_id = app.open_case(member(), "Sepsis", "Which code?", AUTO, channel=Channel.WEB).case_id
    with pytest.raises(NotAnExpert):
        app.claim(member("v-bob"), case_id)
    assert app.claim(EVE, case_id).status == Status.CLAIMED
    assert app.claim(EVE, case_id).version == 3  # claiming again changes nothing
    with pytest.raises(ClaimedByAnother):
        app.claim(MAX, case_id)
    with pytest.raises(ClaimedByAnother):
        app.answer(MAX, case_id, "No.")
    case = app.answer(EVE, case_id, "A41.51, then R65.21.")
    assert case.status == Status.ANSWERED and app.queue(EVE) == []
    with pytest.raises(NotOpen):
        app.answer(EVE, case_id, "Again")
    other = app.open_case(member("v-cat"), "Other", "Q?", AUTO, channel=Channel.WEB).case_id
    assert app.answer(MAX, other, "Answered without claiming first").expert_id == "v-max"


def test_the_queue_lists_waiting_cases_soonest_due_first_and_flags_overdue(
        app: Consults, clock: Clock) -> None:
    slow = app.open_case(member("v-a", hours=48), "Slow", "Q", AUTO, channel=Channel.WEB)
    none = app.open_case(member("v-b", hours=None), "No SLA", "Q", AUTO, channel=Channel.WEB)
    fast = app.open_case(member("v-c", hours=4), "Fast", "Q", AUTO, channel=Channel.WEB)
    assert [c.id for c in app.queue(EVE)] == [fast.case_id, slow.case_id, none.case_id]
    clock.now += timedelta(hours=5)
    assert [c.overdue(clock.now) for c in app.queue(EVE)] == [True, False, False]
    assert app.waiting_counts() == (3, 1)
    app.close_case(EVE, fast.case_id, "duplicate")
    assert app.waiting_counts() == (2, 0)
    with pytest.raises(NotAnExpert):
        app.queue(member())


def raw(sender: str, message_id: str, subject: str = "Re: Sepsis", body: str = "More.",
        **headers: str) -> bytes:
    lines = [f"From: {sender}", f"Subject: {subject}", f"Message-ID: {message_id}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()), "", body]
    return "\r\n".join(lines).encode()


def test_replies_thread_by_headers_or_case_tag_and_never_into_another_members_case(
        app: Consults) -> None:
    ann = member()
    first = raw("v-ann@example.org", "<q1@x>", "Sepsis", "Which code?")
    app.receive_mail(first, "<q1@x>", "v-ann@example.org", ["consult@medcode.localhost"])
    from services.consult.domain import mail_id_for

    opened = app.open_case(ann, "Sepsis", "Which code?", AUTO, channel=Channel.EMAIL,
                           message_id="<q1@x>", mail_id=mail_id_for("<q1@x>"))
    # the same stored message processed twice opens nothing new
    again = app.open_case(ann, "Sepsis", "Which code?", AUTO, channel=Channel.EMAIL,
                          message_id="<q1@x>", mail_id=mail_id_for("<q1@x>"))
    assert again == opened and len(app.member_consults("v-ann")) == 1
    by_our_id = parse(raw("v-ann@example.org", "<r1@x>",
                          In_Reply_To="<consult-1001-2@medcode.localhost>"))
    by_theirs = parse(raw("v-ann@example.org", "<r2@x>", References="<q1@x>"))
    by_subject = parse(raw("v-ann@example.org", "<r3@x>", subject="Re: [Case #1001] Sepsis"))
    for parsed in (by_our_id, by_theirs, by_subject):
        case = app.thread_case(parsed, "v-ann")
        assert case is not None and case.id == opened.case_id
    assert app.thread_case(by_subject, "v-eve") is None  # not Eve's case
    app.receive_mail(b"x", "<r1@x>", "v-ann@example.org", [])
    app.reply_from_mail(mail_id_for("<r1@x>"), opened.case_id, by_our_id, ann)
    app.reply_from_mail(mail_id_for("<r1@x>"), opened.case_id, by_our_id, ann)  # once
    case = app.consult(opened.case_id)
    assert case is not None and [m.body for m in case.messages][-1] == "More."
    assert len(case.messages) == 3
    app.close_case(ann, opened.case_id, "thanks")
    app.receive_mail(b"x", "<r3@x>", "v-ann@example.org", [])
    with pytest.raises(CaseClosed):
        app.reply_from_mail(mail_id_for("<r3@x>"), opened.case_id, by_subject, ann)


def test_a_message_id_is_stored_once(app: Consults) -> None:
    assert app.receive_mail(b"raw", "<same@x>", "a@b.c", ["consult@medcode.localhost"])
    assert not app.receive_mail(b"raw again", "<same@x>", "a@b.c", [])


def test_replies_that_open_no_case_are_capped_per_sender_and_day(app: Consults,
                                                                 clock: Clock) -> None:
    from services.consult.domain import Refusal, mail_id_for

    answered = []
    for n in range(7):
        app.receive_mail(b"x", f"<spam{n}@x>", "forged@example.net", [])
        answered.append(app.refuse_mail(mail_id_for(f"<spam{n}@x>"), "Forged@example.net",
                                        Refusal.UNKNOWN_SENDER, ""))
    assert answered == [True] * 5 + [False] * 2
    assert app.mail(mail_id_for("<spam6@x>")).outcome == "ignored"  # type: ignore[union-attr]
    clock.now += timedelta(days=1)
    app.receive_mail(b"x", "<next@x>", "forged@example.net", [])
    assert app.refuse_mail(mail_id_for("<next@x>"), "forged@example.net",
                           Refusal.UNKNOWN_SENDER, "")


def test_a_consult_view_travels_over_json_unchanged(app: Consults) -> None:
    """What the consult service's HTTP API sends is what its HTTP client reads back."""
    import json

    from services.consult.client import ConsultView, serialise

    opened = app.open_case(member(), "Sepsis", "Which code?",
                           AutoAnswer("Maybe A41.51.", [], "search"), channel=Channel.WEB)
    case = app.consult(opened.case_id)
    assert case is not None
    view = ConsultView.of(case, datetime.now(UTC), "v-ann")
    assert ConsultView.from_dict(json.loads(json.dumps(serialise(view)))) == view
    assert serialise([view]) == [serialise(view)]


async def test_the_gauge_counts_waiting_and_overdue_cases(app: Consults, clock: Clock) -> None:
    from prometheus_client import REGISTRY

    from services.consult.metrics import QueueGauge

    app.open_case(member("v-a", hours=2), "Soon", "Q", AUTO, channel=Channel.WEB)
    app.open_case(member("v-b", hours=48), "Later", "Q", AUTO, channel=Channel.WEB)
    clock.now += timedelta(hours=3)
    assert await QueueGauge(app).refresh() == (2, 1)

    def sample(state: str) -> float | None:
        return REGISTRY.get_sample_value("medcode_consults_waiting", {"state": state})

    assert (sample("waiting"), sample("overdue")) == (2.0, 1.0)
