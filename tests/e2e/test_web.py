"""The web pages over HTTP: server-rendered, GraphQL-backed, metered, CSRF-checked."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.bootstrap import Platform
from services.lookup.domain import CodeEntry
from services.shared.settings import Settings
from services.shared.web.security import CONTENT_SECURITY_POLICY
from tests.e2e.helpers import import_web_sample, link_token, mailed

# One platform with its data for the module; each test is a new visitor (its own cookies).
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web") / "var"


@pytest.fixture
def outbox(data_dir: Path) -> Path:
    return data_dir / "outbox"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    data_dir: Path, icd10cm_release: tuple[str, list[CodeEntry]]
) -> AsyncIterator[httpx.ASGITransport]:
    settings = Settings(mode="embedded", data_dir=data_dir).with_environ(
        GUEST_SESSIONS_PER_ADDRESS_PER_DAY="0")
    platform = Platform(settings)
    app = create_app(settings, platform)
    async with app.router.lifespan_context(app):
        await import_web_sample(platform, icd10cm_release)
        yield httpx.ASGITransport(app=app)


@pytest_asyncio.fixture(loop_scope="module")
async def site(served: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    # https: the session and CSRF cookies are Secure, and a browser keeps them so.
    async with httpx.AsyncClient(transport=served, base_url="https://medcode.test") as client:
        yield client


_REMOTE_ASSET = re.compile(r"""(src|rel="(stylesheet|icon)" href)="(https?:)?//""")
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/ld\+json)[^>]*>", re.I)


def public_part(html: str) -> dict[str, object]:
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    canonical = re.search(r'<link rel="canonical" href="([^"]+)">', html)
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    return {"ld": json.loads(ld.group(1)) if ld else None,
            "canonical": canonical.group(1) if canonical else None,
            "title": title.group(1) if title else None,
            "locked": html.count('<div class="locked">')}


async def test_a_guest_reads_one_full_code_page_then_the_public_part(
    site: httpx.AsyncClient,
) -> None:
    first = await site.get("/codes/icd10cm/I21.9")
    assert first.status_code == 200
    assert "medcode_session" in first.cookies
    page = public_part(first.text)
    assert page["locked"] == 0
    assert page["ld"] == {"@context": "https://schema.org", "@type": "MedicalCode",
                          "codeValue": "I21.9", "codingSystem": "ICD-10-CM",
                          "name": "Acute myocardial infarction, unspecified"}
    assert page["canonical"] == "https://medcode.test/codes/icd10cm/I21.9"
    assert page["title"] == ("I21.9: Acute myocardial infarction, unspecified · ICD-10-CM "
                             "code · medcode")
    assert "In plain words" in first.text and "It also covers: myocardial infarction" in first.text
    assert "0 code page views remaining." in first.text
    assert "Guest accounts are limited to 1 page view." in first.text
    # The codes a note names are links to their pages.
    assert '<a href="/codes/icd10cm/I25.2">I25.2</a>' in first.text
    again = await site.get("/codes/icd10cm/I21.9")  # the same page again spends nothing
    assert public_part(again.text)["locked"] == 0

    second = await site.get("/codes/icd10cm/S72.001A")
    assert second.status_code == 200
    locked = public_part(second.text)
    assert locked["locked"] == 4  # plain words, notes, 7th characters, history
    assert "Fracture of unspecified part of neck of right femur" in second.text
    assert "Register a free account to get 5 more code page views." in second.text
    assert "The 7th character A means" not in second.text


async def test_a_head_request_spends_no_view(site: httpx.AsyncClient) -> None:
    guest = {"query": "mutation { startGuestSession { token } }"}
    started = await site.post("/graphql", json=guest)
    token = started.json()["data"]["startGuestSession"]["token"]
    site.cookies.set("medcode_session", token, domain="medcode.test")
    assert (await site.head("/codes/icd10cm/I21.9")).status_code == 200
    assert (await site.head("/codes/icd10cm/I21.8")).status_code == 404  # no such code
    viewer = await site.post("/graphql", json={
        "query": "{ viewer { codePageViews { remaining } } }"
    }, headers={"Authorization": f"Bearer {token}"})
    assert viewer.json()["data"]["viewer"]["codePageViews"]["remaining"] == 1
    page = await site.get("/codes/icd10cm/I21.9")  # the view a guest has, spent on reading
    assert public_part(page.text)["locked"] == 0


async def test_a_full_page_and_the_codepage_query_spend_one_view_between_them(
    site: httpx.AsyncClient,
) -> None:
    page = await site.get("/codes/icd10pcs/0DTJ4ZZ")
    assert "the procedure is resection (cutting out or off" in page.text
    assert "Percutaneous Endoscopic" in page.text and "ICD-9-CM crosswalk" in page.text
    query = """{ codePage(system: ICD10PCS, code: "0DTJ4ZZ") { ... on CodePage { locked
                 remainingViews plainLanguage { procedure } } } }"""
    same = (await site.post("/graphql", json={"query": query})).json()["data"]["codePage"]
    assert same["locked"] is False and same["remainingViews"] == 0
    assert same["plainLanguage"]["procedure"].startswith("In the Medical and Surgical section")


async def test_any_spelling_of_a_code_redirects_to_its_canonical_page(
    site: httpx.AsyncClient,
) -> None:
    for typed in ("/codes/icd10cm/i219", "/codes/ICD10CM/I21.9", "/codes/icd10cm/I21-9"):
        response = await site.get(typed)
        assert response.status_code == 301, typed
        assert response.headers["location"] == "/codes/icd10cm/I21.9"
    assert (await site.get("/codes/icd10cm/Q99.99")).status_code == 404
    assert (await site.get("/codes/icd9/250.00")).status_code == 404
    missing = await site.get("/codes/icd10cm/not-a-code")
    assert missing.status_code == 404 and "is not a ICD-10-CM code" in missing.text


async def test_search_renders_results_with_the_matched_words_marked(
    site: httpx.AsyncClient,
) -> None:
    page = await site.get("/search", params={"q": "myocardial infarction", "billable": "1"})
    assert page.status_code == 200
    assert '<a href="/codes/icd10cm/I21.9">' in page.text
    assert "<mark>myocardial</mark>" in page.text.lower()
    assert 'name="billable" value="1" checked' in page.text
    fragment = await site.get("/search", params={"q": "I21.9", "fragment": "1"})
    assert fragment.text.lstrip().startswith("<p class=\"count\">")
    assert "<html" not in fragment.text
    assert (await site.get("/", params={"q": "x"})).headers["location"] == "/search?q=x"


async def test_the_fragment_reads_a_query_still_typed_and_the_page_one_sent_whole(
    site: httpx.AsyncClient,
) -> None:
    """search.js asks for the fragment as the box is typed in: "bite of le" is on its way
    to "left", though entries hold "le" (lower extremity). Sent whole (Enter), "le" is
    read as written."""
    typed = await site.get("/search", params={"q": "bite of le", "fragment": "1"})
    whole = await site.get("/search", params={"q": "bite of le"})
    typed_first, whole_first = _first_result(typed.text), _first_result(whole.text)
    assert "bite" in typed_first[1] and "left" in typed_first[1]
    assert whole_first[0] != typed_first[0]
    # The counts by code system are of the results shown: of the query as still typed.
    for html in (typed.text, whole.text):
        total = re.search(r'<p class="count"><strong>([\d,]+)</strong>', html)
        systems = re.findall(r'>ICD-10-(?:CM|PCS) \(([\d,]+)\)</a>', html)
        assert total and systems
        assert sum(int(n.replace(",", "")) for n in systems) <= int(total[1].replace(",", ""))


def _first_result(html: str) -> tuple[str, str]:
    """The first result's link and its title in lower case, marks taken out."""
    found = re.search(r'<li><a href="([^"]+)">.*?<span class="title">(.*?)</span>', html, re.S)
    assert found, html
    return found.group(1), re.sub(r"</?mark>", "", found.group(2)).lower()


async def test_pages_carry_a_strict_csp_and_no_inline_script(site: httpx.AsyncClient) -> None:
    for path in ("/", "/search?q=fracture", "/codes/icd10cm/I21.9", "/login", "/register"):
        response = await site.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert not _INLINE_SCRIPT.search(response.text), path
        assert not _REMOTE_ASSET.search(response.text), path
    ide = await site.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 200 and "/static/graphiql/graphiql.min.js" in ide.text
    assert not _INLINE_SCRIPT.search(ide.text)
    assert not _REMOTE_ASSET.search(ide.text)
    for asset in re.findall(r'src="([^"]+)"', ide.text):
        assert (await site.get(asset)).status_code == 200, asset


async def test_forms_need_the_csrf_token_of_the_visitor(site: httpx.AsyncClient) -> None:
    form = await site.get("/register")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token and site.cookies.get("medcode_csrf") == token.group(1)
    posted = {"email": "csrf@example.org", "password": "a long passphrase", "next": "/"}
    refused = await site.post("/register", data=posted)
    assert refused.status_code == 403 and "expired" in refused.text
    forged = await site.post("/register", data={**posted, "csrf_token": "x" * 43})
    assert forged.status_code == 403
    other_site = await site.post("/register", data={**posted, "csrf_token": token.group(1)},
                                 headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    done = await site.post("/register", data={**posted, "csrf_token": token.group(1),
                                              "next": "//evil.example/"})
    assert done.status_code == 303
    assert done.headers["location"] == "/verify-email?sent=1&next=/account"
    account = await site.get("/account")
    assert "csrf@example.org" in account.text and "free" in account.text


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_register_verify_log_out_log_in_and_reset(
    site: httpx.AsyncClient, outbox: Path
) -> None:
    seen = await site.get("/codes/icd10cm/I21.9")  # a guest with one page seen
    assert "0 code page views remaining." in seen.text
    csrf = csrf_of((await site.get("/register")).text)
    weak = await site.post("/register", data={"email": "me@example.org", "password": "short",
                                              "csrf_token": csrf})
    assert weak.status_code == 400 and 'role="alert"' in weak.text
    assert 'value="me@example.org"' in weak.text
    made = await site.post("/register", data={"email": "me@example.org", "csrf_token": csrf,
                                              "password": "a long passphrase",
                                              "next": "/codes/icd10cm/S72.001A"})
    assert made.headers["location"] == "/verify-email?sent=1&next=/codes/icd10cm/S72.001A"
    assert "We sent you an email" in (await site.get(made.headers["location"])).text
    # Not verified yet: the member has the guest's views, all spent.
    unverified = (await site.get("/codes/icd10cm/S72.001A")).text
    assert public_part(unverified)["locked"] == 4
    assert "Verify your email to view content" in unverified
    assert "Verify your email address (follow the link we mailed you)" in unverified

    token = link_token(await mailed(outbox, "me@example.org"), "/verify-email")
    landing = await site.get(f"/verify-email?token={token}")
    assert "Verify my email" in landing.text  # following the link changes nothing
    verified = await site.post("/verify-email", data={"token": token, "csrf_token": csrf,
                                                       "next": "/codes/icd10cm/S72.001A"})
    assert verified.status_code == 200 and "Your email address is verified." in verified.text
    again = await site.post("/verify-email", data={"token": token, "csrf_token": csrf})
    assert again.status_code == 400 and 'role="alert"' in again.text
    page = await site.get("/codes/icd10cm/S72.001A")
    assert public_part(page.text)["locked"] == 0 and "4 code page views remaining." in page.text
    account = (await site.get("/account")).text
    assert "me@example.org" in account and "verified" in account and "2 used of 6" in account

    out = await site.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert (await site.get("/account")).headers["location"] == "/login?next=/account"
    wrong = await site.post("/login", data={"email": "me@example.org", "password": "nope",
                                            "csrf_token": csrf})
    assert wrong.status_code == 400 and "not right" in wrong.text

    asked = await site.post("/reset-password", data={"email": "me@example.org",
                                                     "csrf_token": csrf})
    assert "a link to reset its password is on its way" in asked.text
    reset = link_token(await mailed(outbox, "me@example.org", after=1), "/reset-password")
    form = await site.get(f"/reset-password?token={reset}")
    assert 'name="password"' in form.text
    done = await site.post("/reset-password", data={"token": reset, "csrf_token": csrf,
                                                    "password": "another long passphrase"})
    assert done.status_code == 200 and "Your password is changed" in done.text
    back = await site.post("/login", data={"email": "me@example.org", "csrf_token": csrf,
                                           "password": "another long passphrase",
                                           "next": "/account"})
    assert back.headers["location"] == "/account"


async def test_the_account_page_offers_the_plans(site: httpx.AsyncClient) -> None:
    csrf = csrf_of((await site.get("/register")).text)
    await site.post("/register", data={"email": "plans@example.org", "csrf_token": csrf,
                                       "password": "a long passphrase"})
    account = await site.get("/account")
    assert account.headers["cache-control"] == "no-store"
    assert "<strong>free</strong> (yours)" in account.text
    assert "<strong>pro</strong>" in account.text
    for plan in re.findall(r'name="plan" value="([^"]+)"', account.text):
        answer = await site.post("/account", data={"plan": plan, "csrf_token": csrf})
        assert answer.status_code == 200
        assert "Continue to payment" in answer.text or 'role="alert"' in answer.text


async def test_sitemap_index_pages_and_robots(site: httpx.AsyncClient) -> None:
    index = await site.get("/sitemap.xml")
    assert index.headers["content-type"].startswith("application/xml")
    sections = re.findall(r"<loc>https://medcode.test/sitemaps/lookup/([a-z0-9-]+)\.xml</loc>",
                          index.text)
    assert sections[0] == "icd10cm-1" and "icd10pcs-1" in sections
    page = await site.get("/sitemaps/lookup/icd10cm-1.xml")
    urls = re.findall(r"<loc>([^<]+)</loc>", page.text)
    assert "https://medcode.test/codes/icd10cm/I21.9" in urls
    assert "https://medcode.test/codes/icd10cm/9" not in urls  # a chapter has no page
    assert all(u.startswith("https://medcode.test/codes/icd10cm/") for u in urls)
    assert (await site.get("/sitemaps/lookup/icd10cm-99.xml")).status_code == 404
    robots = (await site.get("/robots.txt")).text
    assert "Sitemap: https://medcode.test/sitemap.xml" in robots
    assert "Disallow: /account" in robots and "Disallow: /search" in robots


async def test_static_assets_are_fingerprinted_cached_and_compressed(
    site: httpx.AsyncClient,
) -> None:
    home = await site.get("/")
    script = re.search(r'<script src="(/static/lookup/search\.js\?v=[0-9a-f]+)"', home.text)
    assert script
    asset = await site.get(script.group(1), headers={"Accept-Encoding": "gzip"})
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-encoding"] == "gzip"


async def test_the_code_page_box_asks_casepilot_about_the_code(site: httpx.AsyncClient) -> None:
    guest = await site.get("/codes/icd10cm/I21.9")
    assert "Have a question about ICD-10-CM code I21.9?" in guest.text
    assert "to ask CasePilot" in guest.text and 'action="/assistant"' not in guest.text
    csrf = csrf_of((await site.get("/register")).text)
    await site.post("/register", data={"email": "asker@example.org", "csrf_token": csrf,
                                       "password": "a long passphrase"})
    member = await site.get("/codes/icd10cm/I21.9")
    assert 'action="/assistant"' in member.text and 'name="code" value="I21.9"' in member.text
    answer = await site.post("/assistant", data={
        "question": "is it billable?", "system": "ICD10CM", "code": "I21.9",
        "csrf_token": csrf, "fragment": "1"})
    assert answer.status_code == 200 and "<html" not in answer.text
    assert '<a href="/codes/icd10cm/I21.9">I21.9</a>' in answer.text, answer.text
    assert "questions left today" in answer.text
    conversation = re.search(r'data-conversation="([^"]+)"', answer.text)
    assert conversation
    page = await site.post("/assistant", data={
        "question": "what does it exclude?", "conversation": conversation.group(1),
        "csrf_token": csrf})
    # The conversation goes on in the page's follow-up form.
    assert f'name="conversation" value="{conversation.group(1)}"' in page.text
    refused = await site.post("/assistant", data={"question": "", "csrf_token": csrf})
    assert 'role="alert"' in refused.text
