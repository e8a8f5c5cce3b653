"""CasePilot's own HTTP app, for when it runs as its own process (distributed mode).

``ask`` and ``rate`` act for the holder of a member's session token. ``ask_for_member``
acts for a member named by viewer id, so it is checked here, in the assistant service,
whoever calls: only a request bearing MEDCODE_SERVICE_TOKEN gets an answer, and without a
configured token (development on loopback) nobody does. ``medcode service`` guards the
whole app with the same token when one is set; this check holds even when it is not.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from services.assistant.client import LocalAssistant, serialise
from services.assistant.domain import AssistantFailure, CodeRef
from services.shared.rpc import ServiceAuth, rpc_app
from services.shared.settings import Settings


def create_app(assistant: LocalAssistant, settings: Settings | None = None) -> Starlette:
    service_token = (settings or Settings.from_env()).service_token

    async def ask(token: str | None, question: str, conversation_id: str | None = None,
                  about: dict[str, str] | None = None) -> dict[str, Any]:
        return serialise(await assistant.ask(token, question, conversation_id, _ref(about)))

    async def rate(token: str | None, answer_id: str, rating: str,
                   comment: str | None = None) -> bool:
        await assistant.rate(token, answer_id, rating, comment)
        return True

    async def ask_for_member(viewer_id: str, question: str,
                             about: dict[str, str] | None = None,
                             request_id: str | None = None) -> dict[str, Any]:
        return serialise(await assistant.ask_for_member(viewer_id, question, _ref(about),
                                                        request_id))

    path = "/rpc/ask_for_member"
    trusted = (Route(path, ServiceAuth(rpc_app({"ask_for_member": ask_for_member},
                                               expected=(AssistantFailure,)), service_token),
                     methods=["POST"])
               if service_token else Route(path, _untrusted, methods=["POST"]))
    public = rpc_app({"ask": ask, "rate": rate}, expected=(AssistantFailure,))
    return Starlette(routes=[trusted, Mount("/", public)])


async def _untrusted(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"type": "Unauthorized", "message":
                                   "this assistant service has no MEDCODE_SERVICE_TOKEN, so "
                                   "it answers no calls on behalf of members"}},
                        status_code=401)


def _ref(about: dict[str, str] | None) -> CodeRef | None:
    return CodeRef(about["system"], about["code"]) if about else None
