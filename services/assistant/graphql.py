"""CasePilot's part of the public schema; resolvers call the assistant client only."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from services.assistant.client import AssistantClient
from services.assistant.domain import AssistantFailure, CodeRef
from services.assistant.runtime import start
from services.assistant.schema import (
    AnswerRating,
    AskInput,
    AskResult,
    AskStreamEvent,
    RateAnswerInput,
    RateAnswerResult,
    RatingError,
    ask_result,
)
from services.shared.graphql import context
from services.shared.product import Product


def _assistant(info: Info) -> AssistantClient:
    client: AssistantClient = context(info).client("assistant")
    return client


def _about(input: AskInput) -> CodeRef | None:
    return CodeRef(input.about.system.value, input.about.code) if input.about else None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Ask CasePilot a coding question; members only, so many "
                                     "a day as their plan allows.")
    async def ask(self, info: Info, input: AskInput) -> AskResult:
        reply = await _assistant(info).ask(
            context(info).bearer, input.question,
            str(input.conversation_id) if input.conversation_id else None, _about(input))
        return ask_result(reply)

    @strawberry.mutation(description="Thumbs up or down on one of your answers, with a comment.")
    async def rate_answer(self, info: Info, input: RateAnswerInput) -> RateAnswerResult:
        try:
            await _assistant(info).rate(context(info).bearer, str(input.answer_id),
                                        input.rating.value, input.comment)
        except AssistantFailure as failure:
            return RatingError(code=failure.code, message=str(failure))
        return AnswerRating(answer_id=input.answer_id, rating=input.rating,
                            comment=input.comment)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="ask, streamed: the tools as they are called, the "
                                         "checked text, then the result (graphql-transport-ws).")
    async def ask_stream(self, info: Info, input: AskInput
                         ) -> AsyncGenerator[AskStreamEvent, None]:
        stream = _assistant(info).ask_stream(
            context(info).bearer, input.question,
            str(input.conversation_id) if input.conversation_id else None, _about(input))
        async for kind, value in stream:
            if kind == "tool":
                yield AskStreamEvent(tool=value)
            elif kind == "text":
                yield AskStreamEvent(text=value)
            else:
                yield AskStreamEvent(result=ask_result(value))


product = Product(name="assistant", query=None, mutation=Mutation, subscription=Subscription,
                  start=start, after=("lookup", "accounts"))
