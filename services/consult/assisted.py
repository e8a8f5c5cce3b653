"""The automatic answer from CasePilot, through the assistant's client only.

The consult service knows the member (the sender's verified address, or the session on
the site), so it asks CasePilot on their behalf by viewer id (``ask_for_member``), one
path for both channels: the question is metered against the member's daily assistant
allowance and recorded as their conversation, exactly like a question asked signed in.
A mailed question passes its mail's id as the request id, so a redelivered message is not
counted twice. When CasePilot declines (over the day's allowance, out of scope, the
service refused us), the acknowledgement lists the top search results instead and says
why.
"""

from __future__ import annotations

import re

from services.assistant.client import (
    MAX_QUESTION_CHARS,
    AssistantClient,
    AssistantFailure,
    CodeRef,
)
from services.consult.application import AutoAnswer, Requester
from services.consult.intake import SearchAnswerer
from services.consult.timeline import Citation

DECLINED = ("CasePilot could not answer this question ({reason}), so this automatic part "
            "lists the top code-search results for it. It is not an expert's answer.")
# Subject words that say nothing about the case ("Coding question", "Re: help").
FILLER = frozenset({"re", "fw", "fwd", "question", "questions", "help", "query", "urgent",
                    "quick", "coding", "code", "codes", "consult", "please", "a", "the"})


class AssistantAnswerer:
    def __init__(self, assistant: AssistantClient, search: SearchAnswerer) -> None:
        self.assistant = assistant
        self.search = search

    async def answer(self, subject: str, question: str, member: Requester,
                     about: dict[str, str] | None = None, request_id: str | None = None
                     ) -> AutoAnswer:
        ref = CodeRef(about["system"], about["code"]) if about else None
        try:
            reply = await self.assistant.ask_for_member(
                member.viewer_id, asked(subject, question)[:MAX_QUESTION_CHARS], ref,
                request_id)
        except AssistantFailure as failure:
            return await self._declined(subject, question, about, str(failure))
        answer = reply.answer
        if reply.refusal is not None or answer is None or answer.refusal is not None:
            reason = reply.refusal.message if reply.refusal else "no answer"
            return await self._declined(subject, question, about, reason)
        citations = [Citation(c.system, c.code, c.title, c.release) for c in answer.citations]
        return AutoAnswer(answer.text, citations, "assistant")

    async def _declined(self, subject: str, question: str, about: dict[str, str] | None,
                        reason: str) -> AutoAnswer:
        return await self.search.results(subject, question, about,
                                         DECLINED.format(reason=reason.rstrip(".")))


def asked(subject: str, question: str) -> str:
    """What CasePilot is asked: the question, after the subject when the subject says
    something the question does not ("Sepsis due to E. coli" over "With septic shock?")."""
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    adds = [w for w in re.findall(r"[a-z0-9]+", subject.lower())
            if w not in FILLER and w not in words]
    return f"{subject}\n\n{question}" if adds and subject != "(no subject)" else question
