"""Driving the platform in tests: import, wait for the projections, ask GraphQL."""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.lookup.client import LocalLookup
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.lookup.icd10pcs import default_pcs_path, parse_pcs
from tests.conftest import chapters

SEARCH = """query($q: String!, $first: Int = 10, $after: String) {
  searchCodes(query: $q, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { system code title billable } }
  }
}"""

PAGE = """query($system: CodeSystem!, $code: String!) {
  codePage(system: $system, code: $code) {
    __typename
    ... on CodePage { system code title billable locked hierarchy { code }
                      notes { kind label notes } history { release change } }
    ... on CodeNotFound { message }
  }
}"""


def lookup(platform: Platform) -> LocalLookup:
    client = platform.running["lookup"].client
    assert isinstance(client, LocalLookup)
    return client


async def import_entries(
    platform: Platform, release: str, entries: list[CodeEntry], wait: bool = True
) -> int:
    """Import a release and (optionally) wait until search has indexed all of it."""
    app = lookup(platform).app
    await run_in_threadpool(app.import_release, "ICD10CM", release, "test", entries)
    target = await run_in_threadpool(CATALOGUE.last_position, app)
    if wait:
        await wait_indexed(platform, target)
    return target


async def wait_indexed(platform: Platform, target: int, timeout: float = 120.0) -> None:
    import asyncio

    consumer = next(c for c in platform.consumers if c.source == "lookup")
    async with asyncio.timeout(timeout):
        while consumer.position < target:
            if platform.failures:
                raise AssertionError(platform.failures)
            await asyncio.sleep(0.05)


async def graphql(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def paid_viewer(platform: Platform) -> dict[str, str]:
    """Headers of a member on an unlimited plan: code pages open in full, unmetered."""
    accounts = platform.running["accounts"].client
    guest = await accounts.start_guest_session("127.0.0.1")
    member = await accounts.register(guest.token, "reader@example.org", "a long passphrase")
    await accounts.change_plan(member.viewer.id, "pro", "test")
    return {"Authorization": f"Bearer {member.token}"}


@cache
def pcs_sample() -> tuple[str, tuple[CodeEntry, ...]]:
    """The shipped PCS release's section 0 and gastrointestinal system (0D)."""
    release = parse_pcs(default_pcs_path())
    return release.release, tuple(e for e in release.entries if e.code in ("0", "0D")
                                   or e.code.startswith("0D"))


async def import_web_sample(platform: Platform, cm: tuple[str, list[CodeEntry]]) -> None:
    release, entries = cm
    await import_entries(platform, release, chapters(entries, "9", "19"))
    pcs_release, pcs = pcs_sample()
    app = lookup(platform).app
    await run_in_threadpool(app.import_release, "ICD10PCS", pcs_release, "test", list(pcs))
    await wait_indexed(platform, await run_in_threadpool(CATALOGUE.last_position, app))
def outbox_messages(outbox: Path, to: str) -> list[EmailMessage]:
    """The .eml files of the file outbox addressed to ``to``, oldest first."""
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if isinstance(message, EmailMessage) and message["To"] == to:
            found.append(message)
    return found


async def mailed(outbox: Path, to: str, after: int = 0, timeout: float = 30.0) -> EmailMessage:
    """Mail number ``after`` (0 = the first) for ``to``, once the platform delivered it."""
    async with asyncio.timeout(timeout):
        while True:
            found = await asyncio.to_thread(outbox_messages, outbox, to)
            if len(found) > after:
                return found[after]
            await asyncio.sleep(0.1)


def link_token(message: EmailMessage, path: str, site: str = r"https?://\S+") -> str:
    """The token of the link to ``site`` + ``path`` (e.g. "/verify-email") in a message's
    text part; the HTML part must carry the same link."""
    body, html = message.get_body(("plain",)), message.get_body(("html",))
    assert body is not None and html is not None
    found = re.search(rf"{site}{path}\?token=(\S+)", body.get_content())
    assert found, body.get_content()
    assert found.group(0) in html.get_content()
    return unquote(found.group(1))
