"""The model backend against a scripted OpenAI-compatible server the test starts: tool
calls round trip, streaming, and every failure falling back to the offline composer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.accounts.client import LocalAccounts
from services.accounts.runtime import open_accounts
from services.assistant.application import Assistant, Conversations
from services.assistant.composer import OfflineComposer
from services.assistant.llm import ChatClient, ModelComposer, ModelSettings, ModelUnavailable
from services.assistant.metering import AccountsMetering
from services.lookup.client import LocalLookup
from services.shared.settings import Settings
from tests.servers.chat import Step, call, chat_server


async def test_tool_calls_round_trip_and_the_text_is_checked(lookup: LocalLookup) -> None:
    script = [
        Step(tool_calls=[call("search_codes", query="type 2 diabetes with hyperglycemia",
                              systems=["ICD10CM"], billable_only=True)]),
        Step(content="Code E11.65 (type 2 diabetes with hyperglycemia); add Z79.4 for "
                     "insulin. Some say Z99.99 but that is invented."),
    ]
    async with chat_server(script) as server:
        chat = ChatClient(ModelSettings(server.url, "test-model", "sk-test", timeout=5))
        composer = ModelComposer(chat, lookup, stream=False)
        answer = await composer.compose("which code for type 2 diabetes with high blood sugar",
                                        None, [])
        await chat.close()
    assert answer.composer == "model"
    assert [c.code for c in answer.citations] == ["E11.65", "Z79.4"]
    assert answer.citations[0].release == "2026-04-01"
    assert answer.removed == ("Z99.99",) and "Z99.99" not in answer.text
    assert "taken out" in answer.text
    assert [t.name for t in answer.tools] == ["search_codes"]
    second = server.requests[1]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_0"
    assert "E11.65" in json.loads(tool_message["content"])[0]["code"]
    assert server.requests[0]["model"] == "test-model"
    assert {t["function"]["name"] for t in server.requests[0]["tools"]} >= {
        "search_codes", "read_code", "check_pair", "build_pcs", "icd9_to_icd10", "explain"}
    assert server.headers[0]["authorization"] == "Bearer sk-test"


async def test_streamed_replies_assemble_tool_calls_and_text(lookup: LocalLookup) -> None:
    script = [
        Step(tool_calls=[call("build_pcs", values={"1": "0", "2": "D", "3": "T", "4": "J",
                                                   "5": "4", "6": "Z", "7": "Z"}),
                         call("explain", system="ICD10PCS", code="0DTJ4ZZ")]),
        Step(content="A laparoscopic appendectomy is 0DTJ4ZZ: resection of the appendix, "
                     "percutaneous endoscopic approach."),
    ]
    async with chat_server(script) as server:
        chat = ChatClient(ModelSettings(server.url, "m", None, timeout=5))
        answer = await ModelComposer(chat, lookup, stream=True).compose(
            "PCS for a laparoscopic appendectomy", None, [])
        await chat.close()
    assert [t.name for t in answer.tools] == ["build_pcs", "explain"]
    assert [c.code for c in answer.citations] == ["0DTJ4ZZ"]
    assert all(r["stream"] for r in server.requests)
    results = [m for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert json.loads(results[0]["content"])["code"] == "0DTJ4ZZ"
    assert "authorization" not in server.headers[0]


@pytest.mark.parametrize("step", [
    Step(delay=2.0, content="too late"),
    Step(raw="this is not JSON"),
    Step(raw=json.dumps({"choices": []})),
    Step(status=500),
    Step(content=""),
], ids=["timeout", "not-json", "no-choices", "http-500", "empty"])
async def test_failures_raise_model_unavailable(lookup: LocalLookup, step: Step) -> None:
    async with chat_server([step]) as server:
        chat = ChatClient(ModelSettings(server.url, "m", None, timeout=0.5))
        with pytest.raises(ModelUnavailable):
            await ModelComposer(chat, lookup, stream=False).compose("is E11.9 billable?",
                                                                    None, [])
        await chat.close()


async def test_endless_tool_calls_give_up(lookup: LocalLookup) -> None:
    loop = [Step(tool_calls=[call("read_code", system="ICD10CM", code="E11.9")])
            for _ in range(6)]
    async with chat_server(loop) as server:
        chat = ChatClient(ModelSettings(server.url, "m", None, timeout=5))
        with pytest.raises(ModelUnavailable):
            await ModelComposer(chat, lookup, stream=False).compose("is E11.9 billable?",
                                                                    None, [])
        await chat.close()


@pytest.fixture
async def member_assistant(lookup: LocalLookup, tmp_path: Path
                           ) -> AsyncIterator[tuple[Assistant, str, LocalAccounts]]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
    accounts_app = open_accounts(Settings(mode="embedded", data_dir=tmp_path))
    accounts = LocalAccounts(accounts_app)
    guest = await accounts.start_guest_session("127.0.0.1")
    member = await accounts.register(guest.token, "coder@example.org", "a long passphrase")
    conversations = Conversations(env={**env,
                                       "SQLITE_DBNAME": str(tmp_path / "assistant.sqlite")})
    yield (Assistant(conversations, AccountsMetering(accounts), OfflineComposer(lookup)),
           member.token, accounts)
    conversations.close()
    accounts_app.close()


async def test_a_failing_model_falls_back_to_offline(
    lookup: LocalLookup, member_assistant: tuple[Assistant, str, LocalAccounts]
) -> None:
    assistant, token, _ = member_assistant
    async with chat_server([Step(raw="{broken")]) as server:
        chat = ChatClient(ModelSettings(server.url, "m", None, timeout=5))
        assistant.model = ModelComposer(chat, lookup, stream=False)
        reply = await assistant.ask(token, "is E11.9 billable?")
        await chat.close()
    assert reply.answer is not None and reply.answer.composer == "offline"
    assert reply.answer.text.startswith("Yes")
    assert len(server.requests) == 1
