"""CasePilot's own HTTP app, for when it runs as its own process (distributed mode)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from services.assistant.client import LocalAssistant, serialise
from services.assistant.domain import AssistantFailure, CodeRef
from services.shared.rpc import rpc_app


def create_app(assistant: LocalAssistant) -> Starlette:
    async def ask(token: str | None, question: str, conversation_id: str | None = None,
                  about: dict[str, str] | None = None) -> dict[str, Any]:
        ref = CodeRef(about["system"], about["code"]) if about else None
        return serialise(await assistant.ask(token, question, conversation_id, ref))

    async def rate(token: str | None, answer_id: str, rating: str,
                   comment: str | None = None) -> bool:
        await assistant.rate(token, answer_id, rating, comment)
        return True

    return rpc_app({"ask": ask, "rate": rate}, expected=(AssistantFailure,))
