"""The accounts product's part of the public schema; resolvers call the accounts client only.

Sessions travel as a Bearer token (mobile, scripts) and, for browsers, as the
``medcode_session`` cookie the gateway sets HttpOnly, Secure, SameSite=Lax. Expected
failures are union members (AuthError, ActionResult with ok false and a code), never
GraphQL errors; who may do what is decided by the service, from the token.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from services.accounts import web
from services.accounts.client import AccountsClient, AccountsFailure, SessionInfo
from services.accounts.runtime import start
from services.accounts.schema import (
    AuthError,
    AuthResult,
    ChangeEmailInput,
    ChangePasswordInput,
    CheckoutLink,
    LoginInput,
    Plan,
    RegisterInput,
    SessionPayload,
    UpgradeResult,
    Viewer,
)
from services.shared.graphql import ActionResult, Cookie, RequestContext, UserError, context
from services.shared.product import Product
from services.shared.web import SESSION_COOKIE

RESET_ANSWER = ("If an account has this email address, a link to reset its password is on "
                "its way.")


def _accounts(info: Info) -> AccountsClient:
    client: AccountsClient = context(info).client("accounts")
    return client


def _signed_in(ctx: RequestContext, session: SessionInfo) -> SessionPayload:
    # The browser keeps the cookie exactly as long as the session lasts.
    lasts = (session.expires_at - datetime.now(UTC)).total_seconds()
    ctx.response_cookies[SESSION_COOKIE] = Cookie(session.token, max(int(lasts), 0))
    ctx.token = session.token  # later fields of this request see the new session
    return SessionPayload.of(session)


def _signed_out(ctx: RequestContext) -> None:
    ctx.response_cookies[SESSION_COOKIE] = None
    ctx.token = None


async def _action(work: Awaitable[Any], message: str) -> ActionResult:
    try:
        await work
    except AccountsFailure as failure:
        return ActionResult.failed(failure.code, str(failure))
    return ActionResult.done(message)


@strawberry.type
class Query:
    @strawberry.field(description="Who is asking: anonymous, a guest or a member, and quota.")
    async def viewer(self, info: Info) -> Viewer:
        return Viewer.of(await _accounts(info).viewer(context(info).token))

    @strawberry.field(description="The plan catalogue.")
    async def plans(self, info: Info) -> list[Plan]:
        return [Plan.of(plan) for plan in await _accounts(info).plans()]

    @strawberry.field(description="Everything medcode holds about the signed-in viewer, as a "
                                  "JSON document (null when anonymous).")
    async def my_data(self, info: Info) -> JSON | None:
        try:
            data = await _accounts(info).export_data(context(info).token)
        except AccountsFailure:
            return None
        return cast(JSON, data)


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
                                     "member and keeps its history; returns a new token. A "
                                     "verification link is mailed: the free plan's extra "
                                     "views come with the verified email.")
    async def register(self, info: Info, input: RegisterInput) -> AuthResult:
        ctx = context(info)
        try:
            session = await _accounts(info).register(ctx.token, input.email, input.password,
                                                     ctx.client_address)
        except AccountsFailure as failure:
            return AuthError(code=failure.code, message=str(failure))
        return _signed_in(ctx, session)

    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> AuthResult:
        ctx = context(info)
        try:
            session = await _accounts(info).login(input.email, input.password,
                                                  ctx.client_address)
        except AccountsFailure as failure:
            return AuthError(code=failure.code, message=str(failure))
        return _signed_in(ctx, session)

    @strawberry.mutation(description="Revoke the current session; false when there was none.")
    async def logout(self, info: Info) -> bool:
        ctx = context(info)
        revoked = await _accounts(info).logout(ctx.token)
        _signed_out(ctx)
        return revoked

    @strawberry.mutation(description="Follow the emailed link's token: the email is verified "
                                     "(once; links expire after 24 hours).")
    async def verify_email(self, info: Info, token: str) -> ActionResult:
        return await _action(_accounts(info).verify_email(token),
                             "Your email address is verified.")

    @strawberry.mutation(description="Mail a new verification link (at most one a minute).")
    async def resend_verification(self, info: Info) -> ActionResult:
        return await _action(_accounts(info).resend_verification(context(info).token),
                             "A new verification link is on its way.")

    @strawberry.mutation(description="Always answers the same, whether or not the address "
                                     "has an account.")
    async def request_password_reset(self, info: Info, email: str) -> ActionResult:
        await _accounts(info).request_password_reset(email)
        return ActionResult.done(RESET_ANSWER)

    @strawberry.mutation(description="Set a new password with the emailed token; every "
                                     "session of the account ends.")
    async def reset_password(self, info: Info, token: str, new_password: str) -> ActionResult:
        return await _action(_accounts(info).reset_password(token, new_password),
                             "Your password is changed: log in with the new one.")

    @strawberry.mutation(description="Change the password (the current one is asked again); "
                                     "other sessions end and this one gets a new token.")
    async def change_password(self, info: Info, input: ChangePasswordInput) -> AuthResult:
        ctx = context(info)
        try:
            session = await _accounts(info).change_password(
                ctx.token, input.current_password, input.new_password)
        except AccountsFailure as failure:
            return AuthError(code=failure.code, message=str(failure))
        return _signed_in(ctx, session)

    @strawberry.mutation(description="Move the account to another email address, which must "
                                     "be verified again.")
    async def change_email(self, info: Info, input: ChangeEmailInput) -> ActionResult:
        return await _action(
            _accounts(info).change_email(context(info).token, input.password, input.new_email),
            "Your email address is changed: follow the link we mailed to it to verify it.")

    @strawberry.mutation(description="Delete the signed-in account for good (the password is "
                                     "asked again). Personal data becomes unreadable.")
    async def delete_account(self, info: Info, password: str) -> ActionResult:
        ctx = context(info)
        result = await _action(_accounts(info).delete_account(ctx.token, password),
                               "Your account is deleted.")
        if result.ok:
            _signed_out(ctx)
        return result

    @strawberry.mutation(description="Where to pay for a plan: a checkout page naming you.")
    async def upgrade(self, info: Info, plan: str) -> UpgradeResult:
        try:
            url = await _accounts(info).upgrade(context(info).token, plan)
        except AccountsFailure as failure:
            return ActionResult.failed(failure.code, str(failure))
        return CheckoutLink(url=url)


product = Product(name="accounts", query=Query, mutation=Mutation, start=start, web=web.part)
