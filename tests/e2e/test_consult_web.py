"""The consult pages: a member asks and follows their cases, an expert works the queue."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.bootstrap import Platform
from services.shared.settings import Settings
from tests.e2e.test_consult import Person, person

pytestmark = pytest.mark.e2e


@pytest.fixture
async def served(
        embedded_settings: Settings) -> AsyncIterator[tuple[httpx.ASGITransport, Platform]]:
    settings = embedded_settings.with_environ(LOGIN_FAILURE_DELAY_MS="0")
    platform = Platform(settings)
    app = create_app(settings, platform)
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app), platform


def browser(transport: httpx.ASGITransport, who: Person | None) -> httpx.AsyncClient:
    cookies = {"medcode_session": who.token} if who else {}
    return httpx.AsyncClient(transport=transport, base_url="https://medcode.test",
                             cookies=cookies)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_a_member_asks_on_the_site_and_an_expert_answers_from_the_queue(
        served: tuple[httpx.ASGITransport, Platform]) -> None:
    transport, platform = served
    ann = await person(platform, "ann@example.org")
    eve = await person(platform, "eve@example.org", roles=("expert",))

    async with browser(transport, None) as anonymous:
        away = await anonymous.get("/consults")
        assert away.status_code == 303 and away.headers["location"] == "/login?next=/consults"

    async with browser(transport, ann) as site:
        page = await site.get("/consults")
        assert page.status_code == 200 and "No consults yet." in page.text
        assert 'href="/consults">My consults</a>' in page.text
        assert "Consult queue" not in page.text
        empty = await site.post("/consults", data={"subject": "x", "body": " ",
                                                    "csrf_token": csrf_of(page.text)})
        assert empty.status_code == 400 and 'role="alert"' in empty.text
        asked = await site.post("/consults", data={
            "subject": "Sepsis due to E. coli", "body": "Which code with septic shock?",
            "csrf_token": csrf_of(page.text)})
        assert asked.status_code == 303
        case_url = asked.headers["location"]
        case = await site.get(case_url)
        number = re.search(r"\[Case #(\d+)\]", case.text)
        assert number and "Automatic answer by CasePilot" in case.text
        assert "Which code with septic shock?" in case.text
        assert (await site.get("/consults/queue")).status_code == 403

    async with browser(transport, eve) as site:
        queue = await site.get("/consults/queue")
        assert f"[Case #{number.group(1)}]" in queue.text and "Consult queue" in queue.text
        consult_id = case_url.rsplit("/", 1)[1]
        claimed = await site.post("/consults/queue", data={
            "consult": consult_id, "action": "claim", "csrf_token": csrf_of(queue.text)})
        assert claimed.status_code == 303
        queue = await site.get("/consults/queue")
        assert "yours" in queue.text
        answered = await site.post("/consults/queue", data={
            "consult": consult_id, "action": "answer", "body": "A41.51, then R65.21.",
            "csrf_token": csrf_of(queue.text)})
        assert answered.status_code == 303
        assert "Nothing is waiting for an expert." in (await site.get("/consults/queue")).text

    async with browser(transport, ann) as site:
        case = await site.get(case_url)
        assert "A41.51, then R65.21." in case.text and "Expert answer by eve@example.org" in \
            case.text
        assert "answered" in case.text
        assert (await site.get("/consults/00000000-0000-0000-0000-000000000000")
                ).status_code == 404
