"""CaseConsultant end to end (embedded mode, one process): a member emails a question
over real SMTP, gets the acknowledgement threaded to their message, an expert claims
and answers through GraphQL, the answer arrives in the same thread, the member's
emailed reply joins the case. Outgoing mail is received by a real SMTP sink (aiosmtpd)
and, with no relay configured, written to the file outbox.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.consult.domain import mail_id_for
from services.consult.events import CATALOGUE as CONSULT_EVENTS
from services.lookup.domain import CodeEntry
from services.shared.event_schemas import validate_envelope
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql, import_entries
from tests.integration.test_accounts_metering import mailed_token
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.e2e

MAILBOX = "consult@medcode.localhost"
CONSULT_FIELDS = """id caseNumber subject status dueAt overdue claimedByMe
                    messages { direction author body automatic attachments }"""
MY = f"{{ myConsults {{ {CONSULT_FIELDS} }} }}"
QUEUE = f"{{ consultQueue {{ {CONSULT_FIELDS} }} }}"
RESULT = (f"__typename ... on Consult {{ {CONSULT_FIELDS} }} "
          "... on ActionResult { ok code message }")
CLAIM = f"mutation($id: ID!) {{ claimConsult(consultId: $id) {{ {RESULT} }} }}"
ANSWER = (f"mutation($id: ID!, $body: String!) {{ answerConsult(input: {{consultId: $id, "
          f"body: $body}}) {{ {RESULT} }} }}")
REQUEST = (f"mutation($subject: String!, $body: String!) {{ requestConsult(input: "
           f"{{subject: $subject, body: $body, about: {{system: ICD10CM, code: \"A41.51\"}}}})"
           f" {{ {RESULT} }} }}")


@dataclass
class Person:
    email: str
    token: str
    viewer_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def settings(embedded_settings: Settings, sink: SmtpSink) -> Settings:
    return replace(embedded_settings, smtp_relay=sink.address).with_environ(
        LOGIN_FAILURE_DELAY_MS="0")


@pytest.fixture
async def served(settings: Settings, smtp_port: int
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    async for client, platform in gateway(settings):
        await listening(smtp_port)
        yield client, platform


@pytest.fixture(params=["embedded", "distributed"])
async def served_both(request: pytest.FixtureRequest, sink: SmtpSink, smtp_port: int
                      ) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    """The platform in each mode (distributed: PostgreSQL, Kafka, the PostgreSQL outbox)."""
    base: Settings = request.getfixturevalue(f"{request.param}_settings")
    settings = replace(base, smtp_relay=sink.address).with_environ(LOGIN_FAILURE_DELAY_MS="0")
    async for client, platform in gateway(settings):
        await listening(smtp_port)
        yield client, platform


async def listening(port: int, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


def accounts_app(platform: Platform) -> Any:
    return platform.running["accounts"].client.app


async def person(platform: Platform, email: str, plan: str = "pro", verified: bool = True,
                 roles: tuple[str, ...] = ()) -> Person:
    """A member made through the accounts service's own commands."""
    app = accounts_app(platform)
    session = await run_in_threadpool(app.register, None, email, "a long passphrase")
    viewer_id = session.viewer.id
    if plan != "free":
        await run_in_threadpool(app.change_plan, viewer_id, plan, "test")
    for role in roles:
        await run_in_threadpool(app.grant_role, viewer_id, role)
    if verified:
        await run_in_threadpool(verify, app, viewer_id)
    return Person(email, session.token, viewer_id)


def verify(app: Any, viewer_id: str) -> None:
    app.verify_email(mailed_token(app, viewer_id))


def send(port: int, message: EmailMessage | bytes, sender: str = "ann@example.org"
         ) -> tuple[int, bytes]:
    raw = message.as_bytes(policy=policy.SMTP) if isinstance(message, EmailMessage) else message
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(sender)
        code, reply = client.rcpt(MAILBOX)
        if code != 250:
            return code, reply
        return client.data(raw)


def question(sender: str, message_id: str, subject: str, body: str,
             **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = MAILBOX
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def consult_mail(sink: SmtpSink) -> list[EmailMessage]:
    """What the consult service sent (its mail asks for replies to the consult mailbox);
    the accounts service's mail (verification) arrives meanwhile, in any order."""
    return [m for m in sink.messages() if str(m["Reply-To"] or "") == MAILBOX]


async def received(sink: SmtpSink, count: int, timeout: float = 90) -> list[EmailMessage]:
    """The consult service's mail, once ``count`` messages have come."""
    async with asyncio.timeout(timeout):
        while len(found := consult_mail(sink)) < count:
            await asyncio.sleep(0.1)
    return found


def mail_to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def ask(client: httpx.AsyncClient, query: str, who: Person | None = None,
              **variables: Any) -> dict[str, Any]:
    body = await graphql(client, query, who.headers if who else None, **variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_a_consult_by_email_from_question_to_answer_and_reply(
        served_both: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int
) -> None:
    client, platform = served_both
    ann = await person(platform, "ann@example.org")
    eve = await person(platform, "eve@example.org", roles=("expert",))

    code, reply = await asyncio.to_thread(send, smtp_port, question(
        "Ann Coder <ann@example.org>", "<q1@example.org>", "Sepsis due to E. coli",
        "Which code for sepsis due to E. coli with septic shock?\n\n-- \nAnn, CPC"))
    assert code == 250, reply

    [ack] = await received(sink, 1)
    assert ack["In-Reply-To"] == "<q1@example.org>"
    number = re.search(r"\[Case #(\d+)\]", str(ack["Subject"])).group(1)  # type: ignore[union-attr]
    assert str(ack["Subject"]) == f"Re: [Case #{number}] Sepsis due to E. coli"
    assert str(ack["Reply-To"]) == MAILBOX
    assert ack["Auto-Submitted"] == "auto-replied"
    text = text_of(ack)
    assert f"case number is #{number}" in text and "will answer by" in text
    assert "Automatic answer (CasePilot, not an expert's answer)" in text
    assert "top code-search results" not in text  # CasePilot answered, for Ann

    [mine] = (await ask(client, MY, ann))["myConsults"]
    assert mine["caseNumber"] == number and mine["status"] == "OPEN" and mine["dueAt"]
    assert mine["messages"][0]["body"] == ("Which code for sepsis due to E. coli with "
                                           "septic shock?")
    assert mine["messages"][1]["automatic"] and mine["messages"][1]["author"] == "CasePilot"

    # Members cannot work the queue; experts can.
    denied = await graphql(client, QUEUE, ann.headers)
    assert "NOT_AN_EXPERT" in denied["errors"][0]["message"]
    [queued] = (await ask(client, QUEUE, eve))["consultQueue"]
    assert queued["id"] == mine["id"] and not queued["overdue"]
    refused = (await ask(client, CLAIM, ann, id=mine["id"]))["claimConsult"]
    assert refused == {"__typename": "ActionResult", "ok": False, "code": "NOT_AN_EXPERT",
                       "message": refused["message"]}
    claimed = (await ask(client, CLAIM, eve, id=mine["id"]))["claimConsult"]
    assert claimed["status"] == "CLAIMED" and claimed["claimedByMe"]
    answered = (await ask(client, ANSWER, eve, id=mine["id"],
                          body="Code A41.51 first, then R65.21 for the septic shock."))
    assert answered["answerConsult"]["status"] == "ANSWERED"

    [_, answer] = await received(sink, 2)
    assert str(answer["Subject"]) == f"Re: [Case #{number}] Sepsis due to E. coli"
    assert answer["In-Reply-To"] == "<q1@example.org>"
    assert str(answer["References"]).split() == ["<q1@example.org>", str(ack["Message-ID"])]
    assert "A41.51 first" in text_of(answer)
    [mine] = (await ask(client, MY, ann))["myConsults"]
    assert mine["status"] == "ANSWERED"
    assert mine["messages"][-1]["author"] == "eve@example.org"

    # Ann replies from her mail client: threaded under the answer, quoting it.
    follow_up = question(
        "ann@example.org", "<q2@example.org>", f"Re: [Case #{number}] Sepsis due to E. coli",
        "And if the shock resolved before admission?\n\nOn Tue, Eve wrote:\n> Code A41.51",
        In_Reply_To=str(answer["Message-ID"]),
        References=f"<q1@example.org> {ack['Message-ID']} {answer['Message-ID']}")
    code, _ = await asyncio.to_thread(send, smtp_port, follow_up)
    assert code == 250
    async with asyncio.timeout(30):
        while (mine := (await ask(client, MY, ann))["myConsults"][0])["status"] != "CLAIMED":
            await asyncio.sleep(0.1)
    assert mine["messages"][-1]["body"] == "And if the shock resolved before admission?"
    kept = await run_in_threadpool(platform.running["consult"].app.mail,
                                   mail_id_for("<q2@example.org>"))
    assert b"> Code A41.51" in kept.raw  # the quoted history stays in the raw copy
    assert [c["id"] for c in (await ask(client, QUEUE, eve))["consultQueue"]] == [mine["id"]]

    # Published events fit their schemas and name people by viewer id, never by address.
    app = platform.running["consult"].app
    envelopes = [e.to_dict() for e in await run_in_threadpool(
        lambda: list(CONSULT_EVENTS.iterate(app)))]
    types = [e["type"] for e in envelopes]
    for expected in ("ConsultMailReceived", "ConsultRequested", "ConsultAcknowledged",
                     "ConsultClaimed", "ConsultAnswered", "ConsultReplied"):
        assert expected in types
    for envelope in envelopes:
        validate_envelope(envelope)
        assert "@" not in str(envelope["payload"])


async def test_unknown_senders_and_members_over_their_allowance_are_answered(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    await person(platform, "fay@example.org", plan="free")  # a plan without consults
    code, _ = await asyncio.to_thread(send, smtp_port, question(
        "stranger@example.net", "<s1@example.net>", "Help", "What is I21.9?"))
    assert code == 250
    code, _ = await asyncio.to_thread(send, smtp_port, question(
        "fay@example.org", "<f1@example.org>", "Help", "What is I21.9?"))
    assert code == 250
    messages = await received(sink, 2)
    [stranger] = mail_to(messages, "stranger@example.net")
    assert stranger["In-Reply-To"] == "<s1@example.net>"
    assert "register" in text_of(stranger) and "could not find a medcode account" in text_of(
        stranger)
    [fay] = mail_to(messages, "fay@example.org")
    assert "no expert consults" in text_of(fay)
    fay_person = await person(platform, "fay2@example.org", plan="free")
    assert (await ask(client, MY, fay_person))["myConsults"] == []


async def test_the_same_message_twice_is_one_case_and_requests_from_the_web(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    ann = await person(platform, "ann@example.org")
    message = question("ann@example.org", "<dup@example.org>", "Twice", "Sent twice?")
    for _ in range(2):
        code, _ = await asyncio.to_thread(send, smtp_port, message)
        assert code == 250
    await received(sink, 1)
    web = (await ask(client, REQUEST, ann, subject="From the web",
                     body="Is A41.51 billable?"))["requestConsult"]
    assert web["__typename"] == "Consult" and web["status"] == "OPEN"
    [_, web_ack] = await received(sink, 2)
    assert str(web_ack["Subject"]) == f"[Case #{web['caseNumber']}] From the web"
    await asyncio.sleep(1)
    mine = (await ask(client, MY, ann))["myConsults"]
    assert [c["subject"] for c in mine] == ["From the web", "Twice"]
    assert len(consult_mail(sink)) == 2
    anonymous = (await ask(client, REQUEST, None, subject="x", body="y"))["requestConsult"]
    assert anonymous["code"] == "SIGN_IN_REQUIRED"


async def test_without_a_relay_the_mail_is_written_to_the_file_outbox(
        embedded_settings: Settings, smtp_port: int) -> None:
    async for _client, platform in gateway(embedded_settings):
        await listening(smtp_port)
        await person(platform, "ann@example.org")
        code, _ = await asyncio.to_thread(send, smtp_port, question(
            "ann@example.org", "<file@example.org>", "On file", "Where does this go?"))
        assert code == 250
        outbox = embedded_settings.data_dir / "outbox"
        async with asyncio.timeout(60):
            while not (acks := _acknowledgements(outbox)):
                await asyncio.sleep(0.1)
        assert acks[0]["In-Reply-To"] == "<file@example.org>"
        assert "[Case #" in str(acks[0]["Subject"])


def _acknowledgements(outbox: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if "[Case #" in str(message["Subject"]):
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


async def test_hostile_mail_is_refused_in_the_conversation_and_the_platform_carries_on(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink, smtp_port: int) -> None:
    client, platform = served
    ann = await person(platform, "ann@example.org")
    head = b"From: ann@example.org\r\nTo: consult@medcode.localhost\r\nSubject: x\r\n"
    nested = head + b"Message-ID: <n@x>\r\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(40))
    huge = head + b"Message-ID: <h@x>\r\n\r\n" + (b"x" * 76 + b"\r\n") * (20 * 1024 * 1024 // 78)
    charset = (head + b"Message-ID: <c@x>\r\nContent-Type: text/plain; charset=x-unknown\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n\xfe\xff\xfa\r\n")
    no_from = b"To: consult@medcode.localhost\r\nSubject: x\r\nMessage-ID: <f@x>\r\n\r\nhi\r\n"
    answers = [await asyncio.to_thread(send, smtp_port, raw)
               for raw in (nested, huge, charset, no_from)]
    assert [code for code, _ in answers] == [554, 552, 554, 550]
    assert b"nested" in answers[0][1] and b"x-unknown" in answers[2][1]
    assert b"From" in answers[3][1]
    code, _ = await asyncio.to_thread(send, smtp_port, question(
        "ann@example.org", "<fine@example.org>", "Still there?", "Is J18.9 billable?"))
    assert code == 250
    async with asyncio.timeout(30):
        while not (await ask(client, MY, ann))["myConsults"]:
            await asyncio.sleep(0.1)
    assert platform.healthy
    assert (await client.get("/readyz")).status_code == 200


async def test_a_consult_asked_on_the_site_gets_casepilots_answer(
        served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink) -> None:
    client, platform = served
    await import_entries(platform, "2026-04-01", [
        CodeEntry("ICD10CM", "1", "Certain infectious and parasitic diseases", "chapter", False,
                  None, "1"),
        CodeEntry("ICD10CM", "A41", "Other sepsis", "category", False, "1", "1"),
        CodeEntry("ICD10CM", "A41.5", "Gram-negative sepsis", "subcategory", False, "A41",
                  "1"),
        CodeEntry("ICD10CM", "A41.51", "Sepsis due to Escherichia coli [E. coli]", "code",
                  True, "A41.5", "1"),
    ])
    ann = await person(platform, "ann@example.org")
    web = (await ask(client, REQUEST, ann, subject="E. coli sepsis",
                     body="Is A41.51 billable?"))["requestConsult"]
    automatic = web["messages"][1]
    assert automatic["automatic"] and automatic["author"] == "CasePilot"
    assert "top code-search results" not in automatic["body"]
    assert "A41.51" in automatic["body"]
    [ack] = await received(sink, 1)
    assert "A41.51" in text_of(ack) and "Automatic answer (CasePilot" in text_of(ack)
