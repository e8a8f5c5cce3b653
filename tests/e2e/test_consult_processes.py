"""CaseConsultant with a process per part (distributed): `medcode service consult` takes
the mail over SMTP and answers its API, the worker processes it and delivers the mail,
the gateway reaches the consult service only through its HTTP client, and the consult
service asks `medcode service assistant` for the automatic answer of a consult asked on
the site through the assistant's HTTP client, with the service token."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from services.accounts.runtime import open_accounts
from services.shared.settings import Settings
from tests.e2e.test_consult import (
    ANSWER,
    CLAIM,
    MY,
    QUEUE,
    listening,
    question,
    received,
    send,
    text_of,
)
from tests.e2e.test_processes import free_port, launch, stop_all, until_ok
from tests.integration.test_accounts_metering import mailed_token
from tests.servers.smtp import SmtpSink

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WEB_REQUEST = """mutation($subject: String!, $body: String!) {
  requestConsult(input: {subject: $subject, body: $body}) {
    ... on Consult { messages { author automatic body } } } }"""


async def test_consult_mail_through_separate_processes(
        distributed_settings: Settings, sink: SmtpSink) -> None:
    settings = distributed_settings
    ports = {name: free_port()
             for name in ("lookup", "accounts", "assistant", "consult", "gateway")}
    smtp = free_port()
    urls = {f"MEDCODE_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}"
            for name in ("lookup", "accounts", "assistant", "consult")}
    started: list[subprocess.Popen[bytes]] = []
    try:
        started += [
            launch(settings, "worker", SMTP_RELAY=sink.address),
            launch(settings, "service", "lookup", PORT=str(ports["lookup"])),
            launch(settings, "service", "accounts", PORT=str(ports["accounts"])),
            launch(settings, "service", "assistant", PORT=str(ports["assistant"]),
                   MEDCODE_ACCOUNTS_URL=urls["MEDCODE_ACCOUNTS_URL"],
                   MEDCODE_LOOKUP_URL=urls["MEDCODE_LOOKUP_URL"]),
            launch(settings, "service", "consult", PORT=str(ports["consult"]),
                   SMTP_PORT=str(smtp), MEDCODE_ACCOUNTS_URL=urls["MEDCODE_ACCOUNTS_URL"],
                   MEDCODE_LOOKUP_URL=urls["MEDCODE_LOOKUP_URL"],
                   MEDCODE_ASSISTANT_URL=urls["MEDCODE_ASSISTANT_URL"]),
            launch(settings, "serve", PORT=str(ports["gateway"]), **urls),
        ]
        async with httpx.AsyncClient(timeout=30) as http:
            # Five processes start at once: on a busy machine that takes a while.
            for port in ports.values():
                await until_ok(http, f"http://127.0.0.1:{port}/healthz", timeout=240)
            await listening(smtp, timeout=240)

            accounts = await run_in_threadpool(open_accounts, settings)
            try:
                ann = await run_in_threadpool(accounts.register, None, "ann@example.org",
                                              "a long passphrase")
                eve = await run_in_threadpool(accounts.register, None, "eve@example.org",
                                              "a long passphrase")
                for member in (ann, eve):
                    await run_in_threadpool(accounts.change_plan, member.viewer.id, "pro", "t")
                    await run_in_threadpool(accounts.verify_email,
                                            mailed_token(accounts, member.viewer.id))
                await run_in_threadpool(accounts.grant_role, eve.viewer.id, "expert")
            finally:
                accounts.close()

            async def ask(query: str, token: str, **variables: str) -> dict:
                response = await http.post(
                    f"http://127.0.0.1:{ports['gateway']}/graphql",
                    json={"query": query, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"})
                body = response.json()
                assert "errors" not in body, body
                return body["data"]  # type: ignore[no-any-return]

            code, reply = await asyncio.to_thread(send, smtp, question(
                "ann@example.org", "<p1@example.org>", "Sepsis", "Which code for sepsis?"))
            assert code == 250, reply
            [ack] = await received(sink, 1, timeout=240)
            assert ack["In-Reply-To"] == "<p1@example.org>"

            [case] = (await ask(QUEUE, eve.token))["consultQueue"]
            assert (await ask(CLAIM, eve.token, id=case["id"]))["claimConsult"]["status"] == \
                "CLAIMED"
            answered = await ask(ANSWER, eve.token, id=case["id"], body="A41.9, then R65.20.")
            assert answered["answerConsult"]["status"] == "ANSWERED"
            answer = (await received(sink, 2, timeout=240))[-1]
            assert answer["In-Reply-To"] == "<p1@example.org>"
            assert "A41.9, then R65.20." in text_of(answer)
            [mine] = (await ask(MY, ann.token))["myConsults"]
            assert mine["status"] == "ANSWERED"

            # On the site: the consult service asks the assistant service for Ann.
            web = (await ask(WEB_REQUEST, ann.token, subject="Sepsis",
                             body="Which code for sepsis with septic shock?"))
            automatic = web["requestConsult"]["messages"][1]
            assert automatic["automatic"] and automatic["author"] == "CasePilot"
            assert "search results" not in automatic["body"], automatic["body"]
            accounts = await run_in_threadpool(open_accounts, settings)
            try:  # the mailed question (asked by the worker) and this one
                used = accounts.viewer(ann.token).assistant_questions.used
            finally:
                accounts.close()
            assert used == 2
            on_behalf = f"{urls['MEDCODE_ASSISTANT_URL']}/rpc/ask_for_member"
            call = {"viewer_id": ann.viewer.id, "question": "Which code for sepsis?"}
            for headers in ({}, {"Authorization": "Bearer a-wrong-token"}):
                refused = await http.post(on_behalf, json=call, headers=headers)
                assert refused.status_code == 401
    finally:
        stop_all(started)

