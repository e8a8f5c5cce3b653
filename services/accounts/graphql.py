"""The accounts product's part of the public schema; resolvers call the accounts client only.

Sessions travel as a Bearer token (mobile, scripts) and, for browsers, as the
``medcode_session`` cookie the gateway sets HttpOnly, Secure, SameSite=Lax.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from services.accounts import web
from services.accounts.client import AccountsClient, AccountsFailure, SessionInfo
from services.accounts.runtime import start
from services.accounts.schema import (
    AuthError,
    AuthResult,
    LoginInput,
    RegisterInput,
    SessionPayload,
    Viewer,
)
from services.shared.graphql import RequestContext, UserError, context
from services.shared.product import Product

SESSION_COOKIE = "medcode_session"


def _accounts(info: Info) -> AccountsClient:
    client: AccountsClient = context(info).client("accounts")
    return client


def _signed_in(ctx: RequestContext, session: SessionInfo) -> SessionPayload:
    ctx.response_cookies[SESSION_COOKIE] = session.token
    ctx.token = session.token  # later fields of this request see the new session
    return SessionPayload.of(session)


@strawberry.type
class Query:
    @strawberry.field(description="Who is asking: anonymous, a guest or a member, and quota.")
    async def viewer(self, info: Info) -> Viewer:
        return Viewer.of(await _accounts(info).viewer(context(info).token))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="A new guest with its own page views; capped per network "
                                     "per day.")
    async def start_guest_session(self, info: Info) -> SessionPayload:
        ctx = context(info)
        try:
            session = await _accounts(info).start_guest_session(ctx.client_address)
        except AccountsFailure as failure:
            raise UserError(str(failure)) from None
        return _signed_in(ctx, session)

    @strawberry.mutation(description="Called with a guest token, converts that guest into a "
                                     "member and keeps its history; returns a new token.")
    async def register(self, info: Info, input: RegisterInput) -> AuthResult:
        ctx = context(info)
        try:
            session = await _accounts(info).register(ctx.token, input.email, input.password)
        except AccountsFailure as failure:
            return AuthError(code=failure.code, message=str(failure))
        return _signed_in(ctx, session)

    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> AuthResult:
        ctx = context(info)
        try:
            session = await _accounts(info).login(input.email, input.password)
        except AccountsFailure as failure:
            return AuthError(code=failure.code, message=str(failure))
        return _signed_in(ctx, session)

    @strawberry.mutation(description="Revoke the current session; false when there was none.")
    async def logout(self, info: Info) -> bool:
        ctx = context(info)
        revoked = await _accounts(info).logout(ctx.token)
        ctx.response_cookies[SESSION_COOKIE] = None
        ctx.token = None
        return revoked


product = Product(name="accounts", query=Query, mutation=Mutation, start=start, web=web.part)
