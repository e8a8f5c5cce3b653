"""The automatic answer from CasePilot, through the assistant's client only.

CasePilot answers signed-in members and meters their questions per day, so it answers
consults asked on the site (the member's own session, one of their questions). Mailed
questions carry no session: for those, and whenever CasePilot declines (quota, out of
scope), the acknowledgement lists the top search results instead and says why.
"""

from __future__ import annotations

from services.assistant.client import AssistantClient, AssistantFailure, CodeRef
from services.consult.application import AutoAnswer, Requester
from services.consult.domain import Citation
from services.consult.intake import SearchAnswerer

BY_MAIL = ("CasePilot, our assistant, answers questions asked while signed in on the site; "
           "for a question by mail this automatic part lists the top code-search results "
           "for it. It is not an expert's answer.")
DECLINED = ("CasePilot could not answer this question ({reason}), so this automatic part "
            "lists the top code-search results for it. It is not an expert's answer.")


class AssistantAnswerer:
    def __init__(self, assistant: AssistantClient, search: SearchAnswerer) -> None:
        self.assistant = assistant
        self.search = search

    async def answer(self, subject: str, question: str, member: Requester,
                     about: dict[str, str] | None = None, token: str | None = None
                     ) -> AutoAnswer:
        if token is None:
            return await self.search.results(subject, question, about, BY_MAIL)
        asked = f"{subject}\n\n{question}" if subject and subject not in question else question
        ref = CodeRef(about["system"], about["code"]) if about else None
        try:
            reply = await self.assistant.ask(token, asked[:2000], None, ref)
        except AssistantFailure as failure:
            return await self.search.results(subject, question, about,
                                             DECLINED.format(reason=str(failure).rstrip(".")))
        answer = reply.answer
        if reply.refusal is not None or answer is None or answer.refusal is not None:
            reason = reply.refusal.message if reply.refusal else "no answer"
            return await self.search.results(subject, question, about,
                                             DECLINED.format(reason=reason.rstrip(".")))
        citations = [Citation(c.system, c.code, c.title, c.release) for c in answer.citations]
        return AutoAnswer(answer.text, citations, "assistant")
