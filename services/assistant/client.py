"""How other code talks to CasePilot: a Protocol and its two implementations.

The gateway's resolvers call this only. Expected failures are ``AssistantFailure``
subclasses with a stable ``code``, raised alike by the in-process and the HTTP client.

``ask_for_member`` answers for a member named by viewer id, for trusted services only
(the consult service, for a question mailed in): no GraphQL field reaches it, and the
assistant's HTTP API answers it only to holders of the service token (``NotTrusted``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any, Protocol

import httpx

from services.accounts.client import Quota
from services.assistant import domain
from services.assistant.application import Assistant
from services.assistant.domain import (
    MAX_QUESTION_CHARS,
    Answer,
    AssistantFailure,
    Citation,
    CodeRef,
    NotTrusted,
    Refusal,
    RefusalCode,
    Reply,
    ToolCall,
    Topic,
)
from services.shared.rpc import RemoteError, RpcClient

__all__ = ["MAX_QUESTION_CHARS", "AssistantClient", "AssistantFailure", "CodeRef",
           "HttpAssistant", "LocalAssistant", "NotTrusted", "Reply"]


class AssistantClient(Protocol):
    async def ask(self, token: str | None, question: str, conversation_id: str | None = None,
                  about: CodeRef | None = None) -> Reply:
        """Answer a member's question (metered), or refuse with a typed reason."""

    def ask_stream(self, token: str | None, question: str, conversation_id: str | None = None,
                   about: CodeRef | None = None) -> AsyncIterator[tuple[str, Any]]:
        """("tool", name)... ("text", piece)... then ("reply", Reply)."""

    async def rate(self, token: str | None, answer_id: str, rating: str,
                   comment: str | None) -> None:
        """Record a member's thumbs up or down on one of their answers."""

    async def ask_for_member(self, viewer_id: str, question: str,
                             about: CodeRef | None = None, request_id: str | None = None
                             ) -> Reply:
        """Answer for the member ``viewer_id`` (trusted services only), metered and
        recorded like their own question; the same ``request_id`` again gives back the
        recorded reply without counting the question twice."""


class LocalAssistant:
    """The in-process client: the embedded gateway and the assistant API use it."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    async def ask(self, token: str | None, question: str, conversation_id: str | None = None,
                  about: CodeRef | None = None) -> Reply:
        return await self.assistant.ask(token, question, conversation_id, about)

    def ask_stream(self, token: str | None, question: str, conversation_id: str | None = None,
                   about: CodeRef | None = None) -> AsyncIterator[tuple[str, Any]]:
        return self.assistant.ask_stream(token, question, conversation_id, about)

    async def rate(self, token: str | None, answer_id: str, rating: str,
                   comment: str | None) -> None:
        await self.assistant.rate(token, answer_id, rating, comment)

    async def ask_for_member(self, viewer_id: str, question: str,
                             about: CodeRef | None = None, request_id: str | None = None
                             ) -> Reply:
        return await self.assistant.ask_for_member(viewer_id, question, about, request_id)


FAILURES: dict[str, type[AssistantFailure]] = {
    cls.__name__: cls for cls in vars(domain).values()
    if isinstance(cls, type) and issubclass(cls, AssistantFailure)
}


class HttpAssistant:
    """The client used when the assistant runs as its own process (see api.py). Its
    stream is the answer's text line by line once it is composed."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._rpc = RpcClient(base_url, token=token)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self._rpc.call(method, **kwargs)
        except RemoteError as error:
            raise FAILURES.get(error.type, AssistantFailure)(str(error)) from None
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 401:  # our service token was refused
                raise NotTrusted("the assistant service refused this service's token"
                                 ) from None
            raise

    async def ask(self, token: str | None, question: str, conversation_id: str | None = None,
                  about: CodeRef | None = None) -> Reply:
        data = await self._call("ask", token=token, question=question,
                                conversation_id=conversation_id,
                                about=asdict(about) if about else None)
        return reply_from(data)

    async def ask_stream(self, token: str | None, question: str,
                         conversation_id: str | None = None, about: CodeRef | None = None,
                         ) -> AsyncIterator[tuple[str, Any]]:
        reply = await self.ask(token, question, conversation_id, about)
        if reply.answer is not None:
            for call in reply.answer.tools:
                yield "tool", call.name
            for line in reply.answer.text.splitlines(keepends=True):
                yield "text", line
        yield "reply", reply

    async def rate(self, token: str | None, answer_id: str, rating: str,
                   comment: str | None) -> None:
        await self._call("rate", token=token, answer_id=answer_id, rating=rating,
                         comment=comment)

    async def ask_for_member(self, viewer_id: str, question: str,
                             about: CodeRef | None = None, request_id: str | None = None
                             ) -> Reply:
        return reply_from(await self._call("ask_for_member", viewer_id=viewer_id,
                                           question=question,
                                           about=asdict(about) if about else None,
                                           request_id=request_id))

    async def close(self) -> None:
        await self._rpc.close()


def serialise(reply: Reply) -> dict[str, Any]:
    """The JSON form ``reply_from`` reads back."""
    data = asdict(reply)
    if reply.answer is not None:
        data["answer"]["refusal"] = reply.answer.refusal.value if reply.answer.refusal else None
    if reply.refusal is not None:
        data["refusal"]["code"] = reply.refusal.code.value
    return data


def reply_from(data: dict[str, Any]) -> Reply:
    answer = None
    if (a := data.get("answer")) is not None:
        answer = Answer(
            text=a["text"], citations=tuple(Citation(**c) for c in a["citations"]),
            tools=tuple(ToolCall(**t) for t in a["tools"]),
            topic=Topic(a["topic"]["kind"], a["topic"]["query"],
                        tuple(CodeRef(**c) for c in a["topic"]["codes"])),
            composer=a["composer"],
            refusal=RefusalCode(a["refusal"]) if a.get("refusal") else None,
            removed=tuple(a["removed"]), unsure=a["unsure"],
        )
    refusal = None
    if (r := data.get("refusal")) is not None:
        refusal = Refusal(RefusalCode(r["code"]), r["message"])
    quota = Quota(**data["quota"]) if data.get("quota") else None
    return Reply(data.get("conversation_id"), data.get("answer_id"), answer, refusal, quota)
