"""The instant part of a consult asked by email (embedded mode, one process): a verified
member mails a question over real SMTP, and the acknowledgement received by a real SMTP
sink carries the case number, when the expert's answer is due, and CasePilot's answer
with citations of real codes, marked as automatic; the question counts against the
member's daily assistant allowance like one asked signed in. A member whose allowance is
spent gets the top search results, and the mail says why. Also: a member over the month's
consults is told so by mail, the queue gauge is on /metrics, a member closes a case."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from datetime import datetime

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.accounts.plans import DEFAULT_PLANS
from services.consult.events import CATALOGUE as CONSULT_EVENTS
from services.consult.mailing import when
from services.lookup.domain import CodeEntry
from services.shared.event_schemas import validate_envelope
from services.shared.settings import Settings
from tests.casepilot import TIGHT
from tests.casepilot import conversation_events as casepilot_events
from tests.conftest import chapters, gateway
from tests.e2e.helpers import import_entries
from tests.e2e.test_consult import (
    MY,
    Person,
    ask,
    listening,
    person,
    question,
    received,
    send,
    text_of,
)
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.e2e

QUESTIONS = "{ viewer { assistantQuestions { used limit } } }"
ASK = """mutation($q: String!) { ask(input: {question: $q}) {
  __typename ... on AssistantAnswer { text } ... on AssistantRefusal { code } } }"""
DIABETES = "Which ICD-10-CM code for type 2 diabetes with hyperglycemia?"
SINGLE = replace(TIGHT, name="single", consults_per_month=1)  # one consult a month
CLOSE = """mutation($id: ID!) { closeConsult(consultId: $id, reason: "answered") {
  __typename ... on Consult { status } } }"""
AUTOMATIC = "---- Automatic answer (CasePilot, not an expert's answer) ----"


@pytest.fixture
async def served(embedded_settings: Settings, sink: SmtpSink, smtp_port: int,
                 icd10cm_release: tuple[str, list[CodeEntry]]
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    """The platform with the endocrine chapter of the real release, and a plan with one
    assistant question a day beside the default ones."""
    plans = {p.name: {k: v for k, v in asdict(p).items() if k != "name"}
             for p in (*DEFAULT_PLANS, TIGHT, SINGLE)}
    settings = replace(embedded_settings, smtp_relay=sink.address).with_environ(
        LOGIN_FAILURE_DELAY_MS="0", MEDCODE_PLANS=json.dumps(plans))
    release, entries = icd10cm_release
    async for client, platform in gateway(settings):
        await listening(smtp_port)
        await import_entries(platform, release, chapters(entries, "4"))
        yield client, platform


async def questions_used(client: httpx.AsyncClient, who: Person) -> int:
    used: int = (await ask(client, QUESTIONS, who))["viewer"]["assistantQuestions"]["used"]
    return used


def conversation_events(platform: Platform, who: Person) -> list[str]:
    return casepilot_events(platform.running["assistant"].app, who.viewer_id)


async def test_a_mailed_question_is_acknowledged_with_casepilots_answer_and_citations(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    ann = await person(platform, "ann@example.org")  # pro: 200 questions a day
    assert await questions_used(client, ann) == 0

    code, reply = await asyncio.to_thread(send, smtp_port, question(
        "Ann Coder <ann@example.org>", "<dm1@example.org>", "Diabetes question", DIABETES))
    assert code == 250, reply
    [ack] = await received(sink, 1)
    assert ack["In-Reply-To"] == "<dm1@example.org>"
    number = re.search(r"\[Case #(\d+)\]", str(ack["Subject"])).group(1)  # type: ignore[union-attr]
    [mine] = (await ask(client, MY, ann))["myConsults"]
    assert mine["caseNumber"] == number
    text = text_of(ack).replace("\r\n", "\n")
    assert f"Your case number is #{number}." in text
    assert f"An expert coder will answer by {when(datetime.fromisoformat(mine['dueAt']))}" \
        in text
    automatic = text[text.index(AUTOMATIC):text.index("---- End of the automatic answer")]
    assert "\nE11.65 Type 2 diabetes mellitus with hyperglycemia" in automatic
    assert ("  ICD10CM E11.65: Type 2 diabetes mellitus with hyperglycemia (release "
            "2026-04-01)") in automatic.split("Citations:\n")[1]
    assert "search results" not in automatic
    assert mine["messages"][1]["automatic"] and mine["messages"][1]["author"] == "CasePilot"

    assert await questions_used(client, ann) == 1
    assert await run_in_threadpool(conversation_events, platform, ann) == [
        "ConversationStarted", "QuestionAsked", "AnswerGiven"]


async def test_a_member_over_the_days_questions_gets_search_results_and_why(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    bob = await person(platform, "bob@example.org", plan=TIGHT.name)  # one question a day
    asked = (await ask(client, ASK, bob, q=DIABETES))["ask"]  # signed in, on the site
    assert asked["__typename"] == "AssistantAnswer"
    assert await questions_used(client, bob) == 1

    code, reply = await asyncio.to_thread(send, smtp_port, question(
        "bob@example.org", "<dm2@example.org>", "Diabetes", DIABETES))
    assert code == 250, reply
    [ack] = await received(sink, 1)
    text = text_of(ack).replace("\r\n", "\n")
    assert "[Case #" in str(ack["Subject"]) and "will answer by" in text
    automatic = text[text.index(AUTOMATIC):]
    assert ("CasePilot could not answer this question (You have asked all 1 questions of "
            "your plan today; the count starts again at midnight UTC), so this automatic "
            "part lists the top code-search results for it.") in " ".join(automatic.split())
    assert "Citations:\n  ICD10CM E1" in automatic
    assert await questions_used(client, bob) == 1
    assert (await run_in_threadpool(conversation_events, platform, bob)).count(
        "QuestionAsked") == 1


async def test_a_member_over_the_months_consults_is_told_so_by_mail(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    cal = await person(platform, "cal@example.org", plan=SINGLE.name)
    for n, subject in enumerate(("First", "Second")):
        code, reply = await asyncio.to_thread(send, smtp_port, question(
            "cal@example.org", f"<cal{n}@example.org>", subject, DIABETES))
        assert code == 250, reply
    first, second = sorted(await received(sink, 2), key=lambda m: str(m["In-Reply-To"]))
    assert "[Case #" in str(first["Subject"]) and first["In-Reply-To"] == "<cal0@example.org>"
    assert second["In-Reply-To"] == "<cal1@example.org>"
    assert "[Case #" not in str(second["Subject"])
    assert ("You have used all 1 expert consults of your plan this month"
            in text_of(second))
    [mine] = (await ask(client, MY, cal))["myConsults"]
    assert mine["subject"] == "First"
    metrics = (await client.get("/metrics")).text
    assert 'medcode_consults_waiting{state="overdue"}' in metrics
    closed = (await ask(client, CLOSE, cal, id=mine["id"]))["closeConsult"]
    assert closed == {"__typename": "Consult", "status": "CLOSED"}
    envelopes = await run_in_threadpool(
        lambda: list(CONSULT_EVENTS.iterate(platform.running["consult"].app)))
    assert {"ConsultMailRefused", "ConsultClosed"} <= {e.type for e in envelopes}
    for envelope in envelopes:
        validate_envelope(envelope.to_dict())
