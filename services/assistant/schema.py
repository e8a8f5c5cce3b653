"""GraphQL types of CasePilot (one module per type family)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from services.assistant import domain
from services.lookup.schema import CodeRefInput, CodeSystem


@strawberry.input
class AskInput:
    question: str
    conversation_id: strawberry.ID | None = strawberry.field(
        default=None, description="continue a conversation")
    about: CodeRefInput | None = strawberry.field(
        default=None, description='asked from a code page ("Have a question about ...?")')


@strawberry.type(description="A code named in an answer, read from a named release.")
class Citation:
    system: CodeSystem
    code: str = strawberry.field(description="canonical display form")
    title: str
    release: str = strawberry.field(
        description='the release the citation was read from, e.g. "2026-04-01"')

    @classmethod
    def of(cls, c: domain.Citation) -> Citation:
        return cls(system=CodeSystem(c.system), code=c.code, title=c.title, release=c.release)


@strawberry.type
class AssistantAnswer:
    conversation_id: strawberry.ID
    answer_id: strawberry.ID = strawberry.field(description="what rateAnswer takes")
    text: str
    citations: list[Citation] = strawberry.field(
        description="every code named in text is here, and only codes that exist")
    tools_called: list[str] = strawberry.field(description="the tools used, in order")
    composer: str = strawberry.field(description='"offline" or "model"')
    unsure: bool = strawberry.field(
        description="it could not answer and shows the nearest search results instead")
    questions_remaining: int | None = strawberry.field(
        description="questions left today after this one; null = unlimited")

    @classmethod
    def of(cls, reply: domain.Reply) -> AssistantAnswer:
        answer = reply.answer
        assert answer is not None and reply.conversation_id and reply.answer_id
        return cls(
            conversation_id=strawberry.ID(reply.conversation_id),
            answer_id=strawberry.ID(reply.answer_id), text=answer.text,
            citations=[Citation.of(c) for c in answer.citations],
            tools_called=[t.name for t in answer.tools], composer=answer.composer,
            unsure=answer.unsure,
            questions_remaining=reply.quota.remaining if reply.quota else None,
        )


@strawberry.type
class AssistantRefusal:
    code: str = strawberry.field(
        description='"SIGN_IN_REQUIRED", "QUOTA_EXCEEDED", "OUT_OF_SCOPE", "INVALID_QUESTION"')
    message: str


AskResult = Annotated[AssistantAnswer | AssistantRefusal, strawberry.union("AskResult")]


def ask_result(reply: domain.Reply) -> AssistantAnswer | AssistantRefusal:
    if reply.refusal is not None:
        return AssistantRefusal(code=reply.refusal.code.value, message=reply.refusal.message)
    return AssistantAnswer.of(reply)


@strawberry.type(description="One step of a streamed answer: a tool called, a piece of "
                             "checked text, or (last) the whole result.")
class AskStreamEvent:
    tool: str | None = None
    text: str | None = None
    result: AskResult | None = None


@strawberry.enum
class Rating(Enum):
    UP = "UP"
    DOWN = "DOWN"


@strawberry.input
class RateAnswerInput:
    answer_id: strawberry.ID
    rating: Rating
    comment: str | None = None


@strawberry.type
class AnswerRating:
    answer_id: strawberry.ID
    rating: Rating
    comment: str | None


@strawberry.type
class RatingError:
    code: str = strawberry.field(description='e.g. "UNKNOWN_ANSWER", "INVALID_RATING"')
    message: str


RateAnswerResult = Annotated[AnswerRating | RatingError, strawberry.union("RateAnswerResult")]
