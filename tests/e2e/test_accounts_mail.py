"""Accounts flows that go through mail, end to end: GraphQL in, the mail policy, the
outbox, delivery over SMTP to a real aiosmtpd server, the token from the received
message back through GraphQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import httpx
import pytest

from gateway.bootstrap import Platform
from services.accounts.client import LocalAccounts
from services.shared.mail import Stored
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql, link_token
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.e2e

SITE = "https://medcode.example"
REGISTER = """mutation($email: String!, $password: String!) {
  register(input: {email: $email, password: $password}) {
    __typename ... on SessionPayload { token } ... on AuthError { code message } } }"""
LOGIN = REGISTER.replace("register(", "login(")
VIEWER = """{ viewer { kind email emailVerified plan codePageViews { limit remaining } } }"""
ACTION = "{ ok code message }"
VERIFY = f"mutation($t: String!) {{ verifyEmail(token: $t) {ACTION} }}"
RESEND = f"mutation {{ resendVerification {ACTION} }}"
REQUEST_RESET = f"mutation($e: String!) {{ requestPasswordReset(email: $e) {ACTION} }}"
RESET = (f"mutation($t: String!, $p: String!) {{ resetPassword(token: $t, newPassword: $p) "
         f"{ACTION} }}")
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $n}) {
    __typename ... on SessionPayload { token } ... on AuthError { code } } }"""
CHANGE_EMAIL = f"""mutation($p: String!, $e: String!) {{
  changeEmail(input: {{password: $p, newEmail: $e}}) {ACTION} }}"""
DELETE = f"mutation($p: String!) {{ deleteAccount(password: $p) {ACTION} }}"
MY_DATA = "{ myData }"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def settings(embedded_settings: Settings, sink: SmtpSink) -> Settings:
    return replace(embedded_settings, smtp_relay=sink.address, smtp_starttls=False,
                   public_url=SITE, mail_from="medcode <hello@medcode.example>",
                   ).with_environ(LOGIN_FAILURE_DELAY_MS="0")


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    async for client, platform in gateway(settings):
        yield client, platform


async def ask(client: httpx.AsyncClient, query: str, token: str | None = None,
              **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    body = await graphql(client, query, headers, **variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def received(sink: SmtpSink, to: str, count: int = 1, timeout: float = 30) -> list[
        EmailMessage]:
    """The first ``count`` messages the SMTP server got for ``to`` (waits for them)."""
    async with asyncio.timeout(timeout):
        while True:
            found = [m for m in sink.messages() if m["To"] == to]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


def token_in(message: EmailMessage, path: str) -> str:
    return link_token(message, path, re.escape(SITE))


async def register(client: httpx.AsyncClient, email: str, password: str) -> str:
    result = (await ask(client, REGISTER, email=email, password=password))["register"]
    assert result["__typename"] == "SessionPayload", result
    token: str = result["token"]
    return token


async def test_verification_mail_over_smtp(served: tuple[httpx.AsyncClient, Platform],
                                           sink: SmtpSink) -> None:
    client, _ = served
    member = await register(client, "Ann@Example.org", "correct horse battery")
    [mail] = await received(sink, "ann@example.org")
    assert mail["From"] == "medcode <hello@medcode.example>"
    assert mail["Subject"] == "Verify your email address for medcode"
    assert mail["Message-ID"].endswith("@medcode.example>") and mail["Date"]
    assert sink.received[0].sender == "hello@medcode.example"
    token = token_in(mail, "/verify-email")
    viewer = (await ask(client, VIEWER, member))["viewer"]
    assert (viewer["emailVerified"], viewer["codePageViews"]["limit"]) == (False, 1)

    assert (await ask(client, VERIFY, t="not-" + token))["verifyEmail"]["code"] == (
        "TOKEN_INVALID")
    done = (await ask(client, VERIFY, t=token))["verifyEmail"]
    assert done["ok"] is True
    assert (await ask(client, VERIFY, t=token))["verifyEmail"]["code"] == "TOKEN_USED"
    viewer = (await ask(client, VIEWER, member))["viewer"]
    assert (viewer["emailVerified"], viewer["codePageViews"]["limit"]) == (True, 6)
    assert (await ask(client, RESEND, member))["resendVerification"]["code"] == (
        "ALREADY_VERIFIED")


async def test_resend_replaces_the_link_with_a_cooldown(
    served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink
) -> None:
    client, platform = served
    member = await register(client, "bea@example.org", "correct horse battery")
    [first] = await received(sink, "bea@example.org")
    too_soon = (await ask(client, RESEND, member))["resendVerification"]
    assert (too_soon["ok"], too_soon["code"]) == (False, "RESEND_TOO_SOON")
    accounts = platform.running["accounts"].client
    assert isinstance(accounts, LocalAccounts)
    accounts.app.policy = replace(accounts.app.policy, resend_cooldown=timedelta(0))
    assert (await ask(client, RESEND, member))["resendVerification"]["ok"] is True
    _, second = await received(sink, "bea@example.org", 2)
    old, new = token_in(first, "/verify-email"), token_in(second, "/verify-email")
    assert old != new
    assert (await ask(client, VERIFY, t=old))["verifyEmail"]["code"] == "TOKEN_INVALID"
    assert (await ask(client, VERIFY, t=new))["verifyEmail"]["ok"] is True
    assert (await ask(client, RESEND))["resendVerification"]["code"] == "SIGN_IN_REQUIRED"


async def test_password_reset(served: tuple[httpx.AsyncClient, Platform],
                              sink: SmtpSink) -> None:
    client, _ = served
    first = await register(client, "cy@example.org", "correct horse battery")
    second = (await ask(client, LOGIN, email="cy@example.org",
                        password="correct horse battery"))["login"]["token"]
    known = (await ask(client, REQUEST_RESET, e="CY@example.org"))["requestPasswordReset"]
    unknown = (await ask(client, REQUEST_RESET, e="nobody@example.org"))["requestPasswordReset"]
    malformed = (await ask(client, REQUEST_RESET, e="not an address"))["requestPasswordReset"]
    assert known == unknown == malformed and known["ok"] is True
    mails = await received(sink, "cy@example.org", 2)  # verification, then reset
    reset = next(m for m in mails if "password" in m["Subject"])
    token = token_in(reset, "/reset-password")
    assert not [m for m in sink.messages() if m["To"] == "nobody@example.org"]

    weak = (await ask(client, RESET, t=token, p="short"))["resetPassword"]
    assert weak["code"] == "WEAK_PASSWORD"  # and the token still works:
    assert (await ask(client, RESET, t=token, p="a brand new passphrase"))["resetPassword"][
        "ok"] is True
    assert (await ask(client, RESET, t=token, p="yet another one"))["resetPassword"][
        "code"] == "TOKEN_USED"
    for old in (first, second):  # every session of the account ended
        assert (await ask(client, VIEWER, old))["viewer"]["kind"] == "ANONYMOUS"
    assert (await ask(client, LOGIN, email="cy@example.org",
                      password="correct horse battery"))["login"]["code"] == (
        "INVALID_CREDENTIALS")
    assert (await ask(client, LOGIN, email="cy@example.org",
                      password="a brand new passphrase"))["login"]["__typename"] == (
        "SessionPayload")
    notices = await received(sink, "cy@example.org", 3)
    assert notices[-1]["Subject"] == "Your medcode password was changed"


async def test_change_password_and_email(served: tuple[httpx.AsyncClient, Platform],
                                         sink: SmtpSink) -> None:
    client, _ = served
    member = await register(client, "dee@example.org", "correct horse battery")
    [verification] = await received(sink, "dee@example.org")
    await ask(client, VERIFY, t=token_in(verification, "/verify-email"))
    other = (await ask(client, LOGIN, email="dee@example.org",
                       password="correct horse battery"))["login"]["token"]

    wrong = (await ask(client, CHANGE_PASSWORD, member, c="wrong password", n="new passphrase"))
    assert wrong["changePassword"]["code"] == "INVALID_CREDENTIALS"
    changed = (await ask(client, CHANGE_PASSWORD, member, c="correct horse battery",
                         n="new passphrase 2"))["changePassword"]
    assert changed["__typename"] == "SessionPayload"
    member = changed["token"]
    assert (await ask(client, VIEWER, other))["viewer"]["kind"] == "ANONYMOUS"
    assert (await ask(client, VIEWER, member))["viewer"]["kind"] == "MEMBER"

    taken = await register(client, "taken@example.org", "correct horse battery")
    assert taken
    refused = (await ask(client, CHANGE_EMAIL, member, p="new passphrase 2",
                         e="taken@example.org"))["changeEmail"]
    assert refused["code"] == "EMAIL_TAKEN"
    moved = (await ask(client, CHANGE_EMAIL, member, p="new passphrase 2",
                       e="Dee.New@example.org"))["changeEmail"]
    assert moved["ok"] is True
    viewer = (await ask(client, VIEWER, member))["viewer"]
    assert viewer["email"] == "dee.new@example.org" and viewer["emailVerified"] is False
    assert viewer["codePageViews"]["limit"] == 1  # re-verify to get the views back
    [again] = await received(sink, "dee.new@example.org")
    notice = (await received(sink, "dee@example.org", 3))[-1]
    assert notice["Subject"] == "Your medcode email address was changed"
    assert (await ask(client, VERIFY, t=token_in(again, "/verify-email")))["verifyEmail"]["ok"]
    assert (await ask(client, LOGIN, email="dee@example.org",
                      password="new passphrase 2"))["login"]["code"] == "INVALID_CREDENTIALS"
    assert (await ask(client, LOGIN, email="dee.new@example.org",
                      password="new passphrase 2"))["login"]["__typename"] == "SessionPayload"
    # The old address is free again.
    assert await register(client, "dee@example.org", "someone else entirely")


async def test_export_and_delete_shred_personal_data(
    served: tuple[httpx.AsyncClient, Platform], settings: Settings, sink: SmtpSink
) -> None:
    client, platform = served
    email = "eve.leaving@example.org"
    member = await register(client, email, "correct horse battery")
    [mail] = await received(sink, email)
    await ask(client, VERIFY, t=token_in(mail, "/verify-email"))
    exported = (await ask(client, MY_DATA, member))["myData"]
    assert exported["email"] == email and exported["email_verified"] is True
    assert [e["event"] for e in exported["history"]][:2] == ["GuestStarted", "Registered"]
    assert exported["history"][1]["email"] == email
    assert "$argon2" not in str(exported)
    assert exported["history"][1]["password"] == "(an argon2id hash, not shown)"
    assert (await ask(client, MY_DATA))["myData"] is None

    store = settings.data_dir / "accounts.sqlite"
    assert email.encode() not in raw_events(store)  # sealed, even before deletion

    refused = (await ask(client, DELETE, member, p="wrong password"))["deleteAccount"]
    assert refused["code"] == "INVALID_CREDENTIALS"
    assert (await ask(client, DELETE, member, p="correct horse battery"))["deleteAccount"][
        "ok"] is True
    assert (await ask(client, VIEWER, member))["viewer"]["kind"] == "ANONYMOUS"
    accounts = platform.running["accounts"].client
    assert isinstance(accounts, LocalAccounts)
    assert await accounts.member_by_email(email) is None
    # The key is gone: every sealed field in the log is unreadable now.
    app = accounts.app
    viewer_id = exported["id"]
    assert app.personal.keys.get(UUID(viewer_id)) is None
    sealed = [e for e in app.repository.event_store.get(UUID(viewer_id))
              if hasattr(e, "sealed_email")]
    assert sealed and all(app.personal.open(UUID(viewer_id), "email", e.sealed_email) is None
                          for e in sealed)
    assert email.encode() not in raw_events(store)
    assert email.encode() not in (settings.data_dir / "accounts-keys.sqlite").read_bytes()
    # Its address can register anew.
    assert await register(client, email, "a fresh start here")


async def until_sent(platform: Platform) -> list[Stored]:
    """The outbox once every row is sent (marked so just after the relay's 250)."""
    assert platform.mail is not None
    async with asyncio.timeout(10):
        while True:
            stored = await platform.mail.outbox.messages()
            if {m.status for m in stored} == {"sent"}:
                return stored
            await asyncio.sleep(0.05)


def raw_events(path: Any) -> bytes:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT state FROM stored_events").fetchall()
    return b"\n".join(bytes(r[0]) for r in rows)


async def test_a_relay_outage_delays_the_mail_and_loses_none(
    served: tuple[httpx.AsyncClient, Platform], sink: SmtpSink
) -> None:
    client, platform = served
    sink.stop()
    await register(client, "fay@example.org", "correct horse battery")
    assert platform.mail is not None
    async with asyncio.timeout(30):
        while not [m for m in await platform.mail.outbox.messages() if m.attempts]:
            await asyncio.sleep(0.1)
    stored = await platform.mail.outbox.messages()
    assert [m.status for m in stored] == ["pending"] and stored[0].last_error
    sink.start()
    [mail] = await received(sink, "fay@example.org", timeout=60)  # the first retry: ~5 s
    assert token_in(mail, "/verify-email")
    await until_sent(platform)


@pytest.mark.integration
async def test_distributed_mail_goes_through_kafka_and_postgres(
    distributed_settings: Settings, sink: SmtpSink
) -> None:
    """Distributed: the policy consumes accounts events from Kafka, records into the
    PostgreSQL outbox with its checkpoint, and the worker's delivery sends over SMTP."""
    settings = replace(distributed_settings, smtp_relay=sink.address, smtp_starttls=False,
                       public_url=SITE)
    async for client, platform in gateway(settings):
        member = await register(client, "gus@example.org", "correct horse battery")
        [mail] = await received(sink, "gus@example.org", timeout=60)
        assert (await ask(client, VERIFY, t=token_in(mail, "/verify-email")))["verifyEmail"][
            "ok"] is True
        viewer = (await ask(client, VIEWER, member))["viewer"]
        assert viewer["emailVerified"] is True
        stored = await until_sent(platform)
        assert [m.source for m in stored] == ["accounts"]
