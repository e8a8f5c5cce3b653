"""A real gateway on a loopback port and Debian's headless Chromium driven by Playwright.

The server runs uvicorn in a thread of the test process over a store holding two
ICD-10-CM chapters and the PCS gastrointestinal tables. Chromium is the machine's own
(``apt-get install chromium``; `.ci/run` installs it): Playwright downloads no browser.
Screenshots go to ``test-output/browser/`` (``MEDCODE_TEST_OUTPUT`` to change).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

from gateway.app import create_app
from gateway.bootstrap import Platform
from services.lookup.domain import CodeEntry
from services.shared.settings import Settings
from tests.e2e.helpers import import_web_sample

# A first-time search costs the in-process server up to a few hundred ms, and typing sends
# one per pause: on a busy CI machine the last keystroke's results can take longer than
# Playwright's 5 s default to show. This bounds waiting; it measures nothing.
expect.set_options(timeout=20_000)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("MEDCODE_TEST_OUTPUT", ROOT / "test-output")) / "browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Module scope: Playwright's sync API keeps an event loop on the main thread while it
# runs, which must be gone before the suite's async tests run theirs.
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's store; with no SMTP relay, its mail is written to ``outbox/*.eml``."""
    return tmp_path_factory.mktemp("browser") / "var"


@pytest.fixture(scope="module")
def base_url(data_dir: Path, icd10cm_release: tuple[str, list[CodeEntry]]) -> Iterator[str]:
    """The gateway serving the sample store at http://127.0.0.1:<port>."""
    settings = Settings(mode="embedded", data_dir=data_dir, port=_free_port()).with_environ(
        GUEST_SESSIONS_PER_ADDRESS_PER_DAY="0")

    async def prepare() -> None:
        platform = Platform(settings)
        await platform.start()
        platform.run_background()
        try:
            await import_web_sample(platform, icd10cm_release)
        finally:
            await platform.stop()

    # In a thread of its own: Playwright's sync API keeps an event loop on this one.
    failures: list[BaseException] = []

    def run_prepare() -> None:
        try:
            asyncio.run(prepare())
        except BaseException as error:
            failures.append(error)

    preparing = threading.Thread(target=run_prepare, name="prepare")
    preparing.start()
    preparing.join()
    if failures:
        raise failures[0]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1",
                                           port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's package "
                    "(apt-get install -y chromium) or set CHROMIUM to its path")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    """A new visitor (no cookies), that may only talk to our own server."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith(base_url) or route.request.url.startswith("data:")
                  else route.abort())
    yield context
    context.close()


@pytest.fixture(scope="session")
def output() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
