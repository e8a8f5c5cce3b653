"""The web pages in a real browser: search as you type, metering, keyboard, no JavaScript,
small screens, accessibility (axe-core) and the Content-Security-Policy."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.e2e.helpers import outbox_messages

pytestmark = pytest.mark.browser

PASSWORD = "a long passphrase"


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any CSP violation or script error."""
    page = context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "favicon" not in message.text:
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    assert problems == [], problems


def fits(page: Page) -> bool:
    """No sideways scrolling: nothing is wider than the viewport."""
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"))


def search_for(page: Page, words: str) -> None:
    page.goto("/")
    page.get_by_label("Words or a code").fill(words)
    expect(page).to_have_url(re.compile(r"q=" + re.escape(words.replace(" ", "+")) + "$"))
    expect(page.locator("#result-list a").first).to_be_visible()


def test_type_a_query_and_pick_a_result(page: Page) -> None:
    page.goto("/")
    box = page.get_by_role("searchbox", name="Words or a code")
    box.press_sequentially("heart attack", delay=30)
    result = page.locator("#result-list a", has_text="I21.9")
    expect(result).to_be_visible()
    expect(page).to_have_url(re.compile(r"/search\?q=heart\+attack$"))
    result.click()
    expect(page).to_have_url(re.compile(r"/codes/icd10cm/I21\.9$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("I21.9")
    expect(page.locator(".official")).to_have_text("Acute myocardial infarction, unspecified")
    expect(page.get_by_role("heading", name="In plain words")).to_be_visible()


def test_results_mark_the_matched_words_and_filter(page: Page) -> None:
    search_for(page, "myocardial infarction")
    expect(page.locator("#result-list mark").first).to_have_text(re.compile("myocardial", re.I))
    page.get_by_label("Billable codes only").check()
    expect(page).to_have_url(re.compile(r"billable=1"))
    expect(page.locator("#result-list .meta").first).to_contain_text("billable")
    search_for(page, "appendix")
    page.get_by_label("Code system").select_option("ICD10PCS")
    expect(page).to_have_url(re.compile(r"system=ICD10PCS"))
    expect(page.locator("#result-list .meta").first).to_contain_text("ICD-10-PCS")
    expect(page.locator(".facets")).to_contain_text("ICD-10-PCS (")


def test_a_guest_sees_one_full_page_then_locked_sections(page: Page) -> None:
    page.goto("/codes/icd10cm/I21.9")
    expect(page.locator(".meter")).to_contain_text("0 code page views remaining.")
    expect(page.locator(".meter")).to_contain_text("Guest accounts are limited to 1 page view.")
    expect(page.get_by_text("Register to view content")).to_have_count(0)
    expect(page.get_by_role("heading", name="Notes")).to_be_visible()
    page.locator(".notes a", has_text="I25.2").click()  # a code a note names
    expect(page).to_have_url(re.compile(r"/codes/icd10cm/I25\.2$"))
    expect(page.get_by_text("Register to view content")).to_have_count(4)
    expect(page.locator(".meter")).to_contain_text(
        "Register a free account to get 5 more code page views.")
    expect(page.locator(".official")).to_have_text("Old myocardial infarction")


def mailed_link(outbox: Path, to: str, path: str) -> str:
    """The link to ``path`` in the newest mail to ``to`` (the platform delivers it to the
    file outbox in the background, so wait for it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in reversed(outbox_messages(outbox, to)):
            body = message.get_body(("plain",))
            found = body and re.search(rf"https?://\S+{path}\?token=\S+", body.get_content())
            if found:
                return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} with a {path} link in {outbox}")


def test_register_verify_from_the_outbox_then_five_more_pages(
    page: Page, data_dir: Path, base_url: str
) -> None:
    page.goto("/codes/icd10cm/I21.9")  # the guest's one page
    page.goto("/codes/icd10cm/I21.4")
    expect(page.get_by_text("Register to view content").first).to_be_visible()
    page.get_by_role("link", name="Create a free account").first.click()
    page.get_by_label("Email").fill("five@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("We sent you an email")

    link = mailed_link(data_dir / "outbox", "five@example.org", "/verify-email")
    assert link.startswith(base_url)
    page.goto(link)
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_role("status")).to_have_text("Your email address is verified.")
    expect(page.get_by_role("link", name="Continue")).to_be_visible()

    codes = ["I21.4", "I21.01", "I21.02", "I21.09", "I21.11"]
    for left, code in zip(range(4, -1, -1), codes, strict=True):
        page.goto(f"/codes/icd10cm/{code}")
        expect(page.locator(".locked")).to_have_count(0)
        expect(page.locator(".meter")).to_contain_text(f"{left} code page")
    page.goto("/codes/icd10cm/I21.19")
    expect(page.get_by_text("Upgrade to view content").first).to_be_visible()
    page.goto("/account")
    expect(page.locator("dl.facts")).to_contain_text("6 used of 6, 0 remaining")
    expect(page.locator("dl.facts")).to_contain_text("verified")
    page.get_by_role("button", name="Log out").last.click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_keyboard_only_search(page: Page) -> None:
    page.goto("/codes/icd10cm/I21.9")
    page.keyboard.press("Tab")  # the skip link comes first on every page
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="medcode")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Search codes")).to_be_focused()
    page.keyboard.press("Enter")
    box = page.get_by_role("searchbox", name="Words or a code")
    expect(box).to_be_focused()  # the search page starts in its box
    page.keyboard.type("fracture of neck of right femur", delay=20)
    expect(page).to_have_url(re.compile(r"right\+femur$"))  # the last keystroke's results
    expect(page.locator("#result-list a").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    first = page.locator("#result-list a").nth(0)
    expect(first).to_be_focused()
    page.keyboard.press("ArrowDown")
    second = page.locator("#result-list a").nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(box).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    target = second.get_attribute("href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(target or "?")))
    # A code typed whole and Enter opens it.
    page.goto("/")
    expect(box).to_be_focused()  # type once the page has put the cursor in its box
    page.keyboard.type("s72001a", delay=20)
    expect(page).to_have_url(re.compile(r"q=s72001a$"))
    expect(page.locator("#result-list a").first).to_contain_text("S72.001A")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/codes/icd10cm/S72\.001A$"))


def test_without_javascript_the_public_page_works(browser: Browser, base_url: str) -> None:
    context = browser.new_context(base_url=base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_label("Words or a code").fill("broken hip")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"/search\?q=broken\+hip"))
        link = page.locator("#result-list a").first
        expect(link).to_be_visible()
        link.click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.locator(".official")).not_to_be_empty()
        ld = page.locator('script[type="application/ld+json"]').text_content() or ""
        assert '"@type": "MedicalCode"' in ld
        assert page.locator('link[rel="canonical"]').get_attribute("href", timeout=1000)
        # A crawler (no cookies, no script) after the guest's page: the public part.
        page.goto("/codes/icd10cm/S72.002A")
        expect(page.locator(".official")).to_contain_text("neck of left femur")
        expect(page.get_by_text("Register to view content").first).to_be_visible()
    finally:
        context.close()


SCREENS = {
    "home": "/search?q=heart+attack",
    "code-icd10cm": "/codes/icd10cm/S72.001A",
    "code-icd10pcs": "/codes/icd10pcs/0DTJ4ZZ",
    "code-locked": "/codes/icd10cm/I21.9",
    "register": "/register",
    "account": "/account",
}


@pytest.mark.parametrize("width", [1280, 360])
def test_screenshots_fit_the_screen(
    browser: Browser, base_url: str, output: Path, width: int
) -> None:
    for name, path in SCREENS.items():
        # Each full page as a new guest, except the locked one (the same guest's second page).
        context = browser.new_context(base_url=base_url,
                                      viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            if name == "code-locked":
                page.goto("/codes/icd10cm/I21.4")
            if name == "account":
                page.goto("/register")
                page.get_by_label("Email").fill(f"shot{width}@example.org")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Create account").click()
            page.goto(path)
            expect(page.locator("main")).to_be_visible()
            assert fits(page), f"{path} scrolls sideways at {width} px"
            page.screenshot(path=str(output / f"{name}-{width}.png"), full_page=True)
            page.screenshot(path=str(output / f"{name}-{width}-first-screen.png"))
        finally:
            context.close()


AXE = files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (run through the debugger
    protocol, so the page's CSP does not stop it)."""
    result = page.evaluate(AXE + "\n;axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"],
             "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_violation(context: BrowserContext) -> None:
    page = context.new_page()
    found = {}
    for path in ["/", "/search?q=fracture", "/codes/icd10cm/S72.001A",
                 "/codes/icd10pcs/0DTJ4ZZ", "/codes/icd10cm/I21.9", "/register", "/login",
                 "/codes/icd10cm/X99", "/reset-password", "/verify-email?token=abc"]:
        page.goto(path)
        found[path] = axe(page)
    assert all(v == [] for v in found.values()), found


def test_graphiql_works_offline(page: Page, context: BrowserContext) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/graphql")
    expect(page.locator(".graphiql-container .graphiql-editors").first).to_be_visible(
        timeout=20_000)
    page.locator(".graphiql-execute-button").click()
    expect(page.locator(".graphiql-response")).to_contain_text("I21.9", timeout=20_000)
    base = page.url.split("/graphql")[0]
    assert all(r.startswith(base) or r.startswith("data:") for r in requests), requests


def test_casepilot_answers_in_the_code_page_box(
    page: Page, output: Path, context: BrowserContext
) -> None:
    page.goto("/register?next=/codes/icd10cm/I21.9")
    page.get_by_label("Email").fill("asks@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.goto("/codes/icd10cm/I21.9")
    box = page.locator("#assistant")
    expect(box).to_contain_text("Have a question about ICD-10-CM code I21.9?")
    box.get_by_label("Your question about I21.9").fill("is it billable?")
    box.get_by_role("button", name="Ask CasePilot").click()
    answer = box.locator(".answer")
    expect(answer).to_be_visible(timeout=20_000)
    expect(answer.locator("a", has_text="I21.9").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/codes/icd10cm/I21\.9$"))  # answered in place
    assert axe(page) == []
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(output / "code-assistant-1280.png"), full_page=True)
    page.set_viewport_size({"width": 360, "height": 900})
    assert fits(page)
    page.screenshot(path=str(output / "code-assistant-360.png"), full_page=True)
