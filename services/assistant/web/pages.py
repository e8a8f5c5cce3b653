"""CasePilot's pages: the box on every code page ("Have a question about ...?") and
/assistant, where a question is answered and a conversation goes on.

The box is a form that posts to /assistant (it works without JavaScript);
``static/assistant.js`` posts it in place and shows the answer in the box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.shared.web import Site

MAX_QUESTION = 2000
SYSTEMS = ("ICD10CM", "ICD10PCS", "HCPCS", "CPT")


@dataclass(frozen=True)
class Piece:
    text: str
    path: str | None = None  # the code page of a cited code


def cited(text: str, citations: list[dict[str, Any]]) -> list[Piece]:
    """The answer with every cited code linked to its page."""
    paths = {c["code"]: f"/codes/{c['system'].lower()}/{c['code']}" for c in citations}
    if not paths:
        return [Piece(text)]
    names = "|".join(re.escape(code) for code in sorted(paths, key=len, reverse=True))
    pieces: list[Piece] = []
    at = 0
    for match in re.finditer(rf"(?<![\w.])({names})(?![\w])", text):
        if match.start() > at:
            pieces.append(Piece(text[at:match.start()]))
        pieces.append(Piece(match.group(1), paths[match.group(1)]))
        at = match.end()
    pieces.append(Piece(text[at:]))
    return pieces


def _about(form: Any) -> dict[str, str] | None:
    system, code = str(form.get("system", "")), str(form.get("code", ""))[:20]
    return {"system": system, "code": code} if system in SYSTEMS and code else None


async def assistant(site: Site, request: Request) -> Response:
    if request.method == "GET":
        return await site.render(request, "assistant/page.html", {
            "question": "", "answer": None, "refusal": None, "about": None,
            "conversation": None})
    form = await site.form(request)
    question = str(form.get("question", "")).strip()[:MAX_QUESTION]
    about = _about(form)
    conversation = str(form.get("conversation", ""))[:64] or None
    data = await site.run(request, "Ask", {"input": {
        "question": question, "about": about, "conversationId": conversation}})
    result = data["ask"]
    values: dict[str, Any] = {"question": question, "about": about, "answer": None,
                              "refusal": None, "conversation": conversation}
    if result["__typename"] == "AssistantAnswer":
        values["answer"] = {**result, "pieces": cited(result["text"], result["citations"])}
        values["conversation"] = result["conversationId"]
    else:
        values["refusal"] = result
    if form.get("fragment") == "1":
        return site.fragment(request, "assistant/answer.html", values)
    return await site.render(request, "assistant/page.html", values)


def routes(site: Site) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        return await assistant(site, request)

    return [Route("/assistant", endpoint, methods=["GET", "POST"])]
