"""CasePilot's HTTP API answering on behalf of a member (distributed mode): only a
caller bearing the service token gets an answer, checked by the assistant service
itself; without a configured token nobody does. Served by uvicorn on a free port and
called through the HTTP client, over a small real CasePilot (tests/casepilot.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
import uvicorn

from services.accounts.client import LocalAccounts
from services.assistant.api import create_app
from services.assistant.client import HttpAssistant, NotTrusted
from services.consult.assisted import AssistantAnswerer
from services.consult.intake import SearchAnswerer
from services.consult.members import AccountsMembers
from services.shared.settings import Settings
from tests.casepilot import Stack
from tests.servers.smtp import free_port

pytestmark = pytest.mark.integration

TOKEN = "the-service-token"
QUESTION = "which ICD-10-CM code for type 2 diabetes with hyperglycemia"


@asynccontextmanager
async def served(stack: Stack, service_token: str | None) -> AsyncIterator[str]:
    settings = replace(Settings(), service_token=service_token)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(stack.assistant, settings),
                                           host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def client(url: str, token: str | None) -> AsyncIterator[HttpAssistant]:
    remote = HttpAssistant(url, token=token)
    try:
        yield remote
    finally:
        await remote.close()


async def test_only_the_service_token_gets_an_answer_on_behalf_of_a_member(
        stack: Stack) -> None:
    ann = stack.member("ann@example.org")
    async with served(stack, TOKEN) as url:
        for token in (None, "a-wrong-token"):
            async with client(url, token) as remote:
                with pytest.raises(NotTrusted):
                    await remote.ask_for_member(ann.viewer_id, QUESTION)
        async with httpx.AsyncClient(base_url=url) as raw:
            refused = await raw.post("/rpc/ask_for_member", json={
                "viewer_id": ann.viewer_id, "question": QUESTION},
                headers={"Authorization": "Bearer a-wrong-token"})
            assert refused.status_code == 401
        assert stack.questions_used(ann) == 0 and stack.conversation_events(ann) == []

        async with client(url, TOKEN) as remote:
            reply = await remote.ask_for_member(ann.viewer_id, QUESTION, request_id="r1")
            assert reply.answer is not None and reply.refusal is None
            assert reply.answer.text.startswith("E11.65 ")
            assert "E11.65" in {c.code for c in reply.answer.citations}
            assert stack.questions_used(ann) == 1
            again = await remote.ask_for_member(ann.viewer_id, QUESTION, request_id="r1")
            assert (again.answer_id, again.answer.text if again.answer else None) == (
                reply.answer_id, reply.answer.text)
            assert stack.questions_used(ann) == 1
        async with client(url, None) as remote:  # a member's own session needs no token
            own = await remote.ask(ann.token, QUESTION)
            assert own.answer is not None and stack.questions_used(ann) == 2
    assert stack.conversation_events(ann) == ["ConversationStarted", "QuestionAsked",
                                              "AnswerGiven"] * 2


async def test_without_a_configured_token_nobody_is_answered_on_behalf(stack: Stack) -> None:
    ann = stack.member("ann@example.org")
    async with served(stack, None) as url:
        for token in (None, TOKEN):
            async with client(url, token) as remote:
                with pytest.raises(NotTrusted):
                    await remote.ask_for_member(ann.viewer_id, QUESTION)
    assert stack.questions_used(ann) == 0


async def test_a_consult_whose_token_is_refused_gets_search_results_and_says_why(
        stack: Stack) -> None:
    stack.member("ann@example.org")
    who = await AccountsMembers(LocalAccounts(stack.accounts)).by_email("ann@example.org")
    assert who is not None
    async with served(stack, TOKEN) as url, client(url, "a-wrong-token") as remote:
        auto = await AssistantAnswerer(remote, SearchAnswerer(stack.lookup)).answer(
            "Diabetes", QUESTION, who, request_id="m1")
    assert auto.source == "search"
    assert auto.text.startswith("CasePilot could not answer this question (the assistant "
                                "service refused this service's token)")
