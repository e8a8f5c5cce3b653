"""The consult product's part of the public schema; resolvers call the consult client only.

Authorization is the service's (the client passes the session token along); expected
failures come back as ``ActionResult`` members of ``ConsultResult``.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from services.consult import web
from services.consult.client import ConsultClient, ConsultFailure, ConsultView
from services.consult.failures import SignInRequired
from services.consult.runtime import start
from services.consult.schema import (
    AnswerConsultInput,
    Consult,
    ConsultResult,
    RequestConsultInput,
)
from services.shared.graphql import ActionResult, UserError, context
from services.shared.product import Product


def _consults(info: Info) -> ConsultClient:
    client: ConsultClient = context(info).client("consult")
    return client


def _failed(failure: ConsultFailure) -> ActionResult:
    return ActionResult.failed(failure.code, str(failure))


def _one(view: ConsultView) -> Consult:
    return Consult.of(view)


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in member's cases, newest first (empty when "
                                  "signed out).")
    async def my_consults(self, info: Info) -> list[Consult]:
        try:
            views = await _consults(info).my_consults(context(info).token)
        except SignInRequired:
            return []
        return [_one(v) for v in views]

    @strawberry.field(description="Experts only: open and claimed cases, soonest due first, "
                                  "overdue flagged.")
    async def consult_queue(self, info: Info) -> list[Consult]:
        try:
            views = await _consults(info).queue(context(info).token)
        except ConsultFailure as failure:
            raise UserError(f"{failure.code}: {failure}") from None
        return [_one(v) for v in views]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Open a consult from the web; acknowledged by email too.")
    async def request_consult(self, info: Info, input: RequestConsultInput) -> ConsultResult:
        about = ({"system": input.about.system.value, "code": input.about.code}
                 if input.about else None)
        try:
            view = await _consults(info).request_consult(context(info).token, input.subject,
                                                         input.body, about)
        except ConsultFailure as failure:
            return _failed(failure)
        return _one(view)

    @strawberry.mutation(description="Experts: take a case from the queue.")
    async def claim_consult(self, info: Info, consult_id: strawberry.ID) -> ConsultResult:
        try:
            view = await _consults(info).claim(context(info).token, str(consult_id))
        except ConsultFailure as failure:
            return _failed(failure)
        return _one(view)

    @strawberry.mutation(description="Experts: answer a case (claiming it when open); the "
                                     "answer is mailed in the case's thread.")
    async def answer_consult(self, info: Info, input: AnswerConsultInput) -> ConsultResult:
        try:
            view = await _consults(info).answer(context(info).token, str(input.consult_id),
                                                input.body)
        except ConsultFailure as failure:
            return _failed(failure)
        return _one(view)

    @strawberry.mutation(description="Close a case: its member or an expert.")
    async def close_consult(self, info: Info, consult_id: strawberry.ID,
                            reason: str = "") -> ConsultResult:
        try:
            view = await _consults(info).close_case(context(info).token, str(consult_id), reason)
        except ConsultFailure as failure:
            return _failed(failure)
        return _one(view)


product = Product(name="consult", query=Query, mutation=Mutation, start=start,
                  after=("accounts", "lookup", "assistant"), web=web.part)
