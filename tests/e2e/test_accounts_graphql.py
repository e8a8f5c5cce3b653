"""Accounts and metered code pages through the real gateway (embedded mode, one process)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.bootstrap import Platform
from services.lookup.domain import CodeEntry
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql, import_entries, link_token, mailed

pytestmark = pytest.mark.e2e

CODES = [f"A00.{n:02d}" for n in range(40)]

VIEWER = "{ viewer { kind email plan codePageViews { used limit remaining } } }"
START = "mutation { startGuestSession { token viewer { kind plan codePageViews { remaining } } } }"
REGISTER = """mutation($email: String!, $password: String!) {
  register(input: {email: $email, password: $password}) {
    __typename
    ... on SessionPayload {
      token viewer { kind email plan codePageViews { used limit remaining } }
    }
    ... on AuthError { code message }
  }
}"""
LOGIN = REGISTER.replace("register(", "login(")
LOGOUT = "mutation { logout }"
VERIFY = "mutation($link: String!) { verifyEmail(token: $link) { ok code message } }"
PAGE = """query($code: String!) {
  codePage(system: ICD10CM, code: $code) {
    __typename
    ... on CodePage { code title billable locked remainingViews nextStep
                      kind hierarchy { code } notes { kind } history { change } }
  }
}"""
FULL_FIELDS = ("kind", "hierarchy", "notes", "history")


def synthetic_release() -> list[CodeEntry]:
    def entry(code: str, title: str, kind: str, billable: bool, parent: str | None,
              **extra: Any) -> CodeEntry:
        return CodeEntry("ICD10CM", code, title, kind, billable, parent, "1", **extra)

    return [
        entry("1", "Certain infectious and parasitic diseases", "chapter", False, None),
        entry("A00-A09", "Intestinal infectious diseases", "block", False, "1"),
        entry("A00", "Cholera", "category", False, "A00-A09",
              notes={"excludes1": ("synthetic note",)}),
        *(entry(code, f"Synthetic code {code}", "code", True, "A00") for code in CODES),
    ]


@pytest.fixture
def settings(embedded_settings: Settings) -> Settings:
    return embedded_settings.with_environ(LOGIN_FAILURE_DELAY_MS="0")


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    async for client, platform in gateway(settings):
        await import_entries(platform, "synthetic", synthetic_release(), wait=False)
        yield client, platform


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ask(client: httpx.AsyncClient, query: str, token: str | None = None,
              **variables: Any) -> dict[str, Any]:
    body = await graphql(client, query, bearer(token) if token else None, **variables)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def open_pages(client: httpx.AsyncClient, token: str, codes: list[str]) -> list[dict]:
    bodies = await asyncio.gather(*(ask(client, PAGE, token, code=c) for c in codes))
    return [b["codePage"] for b in bodies]


async def test_metering_done_means(served: tuple[httpx.AsyncClient, Platform],
                                   settings: Settings) -> None:
    """A guest's 20 parallel opens unlock exactly 1 page; after registering and following
    the mailed link, 19 parallel opens unlock exactly 5 more; then 0 remain."""
    client, _ = served
    outbox = settings.data_dir / "outbox"
    anonymous = (await ask(client, PAGE, code="a0000"))["codePage"]
    assert anonymous["locked"] is True and anonymous["remainingViews"] == 0
    assert anonymous["title"] == "Synthetic code A00.00" and anonymous["billable"] is True
    assert "guest session" in anonymous["nextStep"]
    assert all(anonymous[f] is None for f in FULL_FIELDS)
    assert (await ask(client, VIEWER))["viewer"]["kind"] == "ANONYMOUS"

    started = (await ask(client, START))["startGuestSession"]
    guest = started["token"]
    assert started["viewer"] == {"kind": "GUEST", "plan": "guest",
                                 "codePageViews": {"remaining": 1}}

    first = await open_pages(client, guest, CODES[:20])
    unlocked = [p for p in first if not p["locked"]]
    assert len(unlocked) == 1
    assert unlocked[0]["hierarchy"] == [{"code": "1"}, {"code": "A00-A09"}, {"code": "A00"}]
    for page in first:
        assert page["remainingViews"] == 0
        if page["locked"]:
            assert all(page[f] is None for f in FULL_FIELDS)
            assert "Register a free account to get 5 more" in page["nextStep"]
    again = (await ask(client, PAGE, guest, code=unlocked[0]["code"]))["codePage"]
    assert again["locked"] is False  # re-opening an unlocked page is free

    registered = (await ask(client, REGISTER, guest, email=" Ann@Example.org ",
                            password="correct horse battery"))["register"]
    assert registered["__typename"] == "SessionPayload"
    assert registered["viewer"] == {
        "kind": "MEMBER", "email": "ann@example.org", "plan": "free",
        "codePageViews": {"used": 1, "limit": 1, "remaining": 0},
    }
    member = registered["token"]
    assert member != guest

    # The verification mail lands in $DATA_DIR/outbox/; its link's token verifies.
    mail = await mailed(outbox, "ann@example.org")
    token = link_token(mail, "/verify-email")
    verified = (await ask(client, VERIFY, member, link=token))["verifyEmail"]
    assert verified == {"ok": True, "code": None, "message": "Your email address is verified."}
    again = (await ask(client, VERIFY, member, link=token))["verifyEmail"]
    assert (again["ok"], again["code"]) == (False, "TOKEN_USED")
    viewer = (await ask(client, VIEWER, member))["viewer"]
    assert viewer["codePageViews"] == {"used": 1, "limit": 6, "remaining": 5}

    second = await open_pages(client, member, CODES[20:39])
    assert sum(not p["locked"] for p in second) == 5
    assert all("Upgrade" in p["nextStep"] for p in second if p["locked"])

    viewer = (await ask(client, VIEWER, member))["viewer"]
    assert viewer["codePageViews"] == {"used": 6, "limit": 6, "remaining": 0}
    assert (await ask(client, VIEWER, guest))["viewer"]["kind"] == "ANONYMOUS"  # rotated


async def test_auth_errors(served: tuple[httpx.AsyncClient, Platform]) -> None:
    client, _ = served
    ok = (await ask(client, REGISTER, email="bob@example.org",
                    password="correct horse battery"))["register"]
    assert ok["__typename"] == "SessionPayload"

    async def register_code(email: str, password: str) -> str:
        result = (await ask(client, REGISTER, email=email, password=password))["register"]
        assert result["__typename"] == "AuthError" and result["message"]
        code: str = result["code"]
        return code

    assert await register_code("BOB@Example.ORG", "another password") == "EMAIL_TAKEN"
    assert await register_code("carol@example.org", "abc") == "WEAK_PASSWORD"
    assert await register_code("carol@@example", "correct horse battery") == "INVALID_EMAIL"

    wrong = (await ask(client, LOGIN, email="bob@example.org", password="wrong password"))
    unknown = (await ask(client, LOGIN, email="nobody@example.org", password="wrong password"))
    assert wrong["login"] == unknown["login"]
    assert wrong["login"]["code"] == "INVALID_CREDENTIALS"
    good = (await ask(client, LOGIN, email="Bob@example.org",
                      password="correct horse battery"))["login"]
    assert good["viewer"]["email"] == "bob@example.org"


async def test_browser_cookie_session(served: tuple[httpx.AsyncClient, Platform]) -> None:
    client, _ = served
    response = await client.post("/graphql", json={"query": START})
    set_cookie = response.headers["set-cookie"]
    token = response.json()["data"]["startGuestSession"]["token"]
    assert set_cookie.startswith(f"medcode_session={token};")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", "Max-Age="):
        assert attribute.lower() in set_cookie.lower()
    # The browser keeps it as long as the session lasts (SESSION_TTL_SECONDS, 30 days).
    max_age = int(re.search(r"max-age=(\d+)", set_cookie, re.IGNORECASE)[1])  # type: ignore[index]
    assert 30 * 24 * 3600 - 60 <= max_age <= 30 * 24 * 3600

    cookie = {"Cookie": f"medcode_session={token}"}  # Secure cookies: send by hand over http
    body = (await client.post("/graphql", json={"query": VIEWER}, headers=cookie)).json()
    assert body["data"]["viewer"]["kind"] == "GUEST"

    out = await client.post("/graphql", json={"query": LOGOUT}, headers=cookie)
    assert out.json()["data"]["logout"] is True
    assert 'medcode_session="";' in out.headers["set-cookie"] or \
        "max-age=0" in out.headers["set-cookie"].lower()
    body = (await client.post("/graphql", json={"query": VIEWER}, headers=cookie)).json()
    assert body["data"]["viewer"]["kind"] == "ANONYMOUS"


async def test_guest_session_cap(embedded_settings: Settings) -> None:
    capped = replace(embedded_settings, secret_key="one secret for both runs").with_environ(
        GUEST_SESSIONS_PER_ADDRESS_PER_DAY="2")
    async for client, _ in gateway(capped):
        for _ in range(2):
            await ask(client, START)
        body = await graphql(client, START)
        assert body["data"] is None
        assert "limit is 2 a day" in body["errors"][0]["message"]
        # Production masks unexpected errors, never this one (a UserError).
    async for client, _ in gateway(replace(capped, environment="production")):
        body = await graphql(client, START)
        assert "limit is 2 a day" in body["errors"][0]["message"]


async def test_behind_a_trusted_proxy_each_client_has_its_own_cap(
    embedded_settings: Settings,
) -> None:
    """The test client's peer is 127.0.0.1: as a trusted proxy, the address it forwards
    is the client; untrusted, its X-Forwarded-For is ignored (anyone could write it)."""
    behind = replace(embedded_settings, trusted_proxies=("127.0.0.0/8",)).with_environ(
        GUEST_SESSIONS_PER_ADDRESS_PER_DAY="1")

    async def start(client: httpx.AsyncClient, forwarded: str) -> bool:
        body = await graphql(client, START, {"X-Forwarded-For": forwarded})
        return body.get("data") is not None

    async for client, _ in gateway(behind):
        assert await start(client, "198.51.100.1")
        assert await start(client, "198.51.100.2")  # another visitor behind the balancer
        assert not await start(client, "198.51.100.1")  # the same one again: capped
        assert not await start(client, "6.6.6.6, 198.51.100.1")  # a forged hop is not read
    exposed = replace(behind, trusted_proxies=(), data_dir=behind.data_dir / "other")
    async for client, _ in gateway(exposed):
        assert await start(client, "198.51.100.3")
        assert not await start(client, "198.51.100.4")  # the header is ignored: one peer
