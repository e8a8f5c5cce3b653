"""Web pages benchmark: prints figures, asserts nothing.

Over a real store (``DATA_DIR``, default ./var, as ``make serve`` leaves it: the shipped
ICD-10-CM and ICD-10-PCS releases), it prints:

  server time   a code page rendered by the gateway in-process (ASGI, no network), p50 and
                p95, for a member on an unlimited plan (the full page: every section and the
                plain-language description), the same data through POST /graphql alone (the
                page's own cost is the difference), a locked page, and a search page
  JavaScript    every script a page loads, gzip-compressed (the size a browser downloads)
  LCP           the largest contentful paint of the home page, a search and a code page in
                headless Chromium (Debian's /usr/bin/chromium), server over loopback

Targets (issue "The web"): server time p50 <= 20 ms, JavaScript <= 50 kB compressed,
LCP < 1 s.

Usage: python bench/web.py [--pages 300] [--data-dir var]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import socket
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.bootstrap import Platform  # noqa: E402
from services.shared.graphql import offset_cursor  # noqa: E402
from services.shared.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# The code page's own operation document, as the page runs it.
PAGE_QUERY = (ROOT / "services" / "lookup" / "web" / "operations.graphql").read_text()
TARGETS = {"server": 20.0, "js": 50.0, "lcp": 1000.0}
LCP_SCRIPT = """() => new Promise(resolve => {
  new PerformanceObserver(list => {
    const entries = list.getEntries();
    resolve(entries[entries.length - 1].startTime);
  }).observe({type: 'largest-contentful-paint', buffered: true});
})"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def sample_codes(client: httpx.AsyncClient, count: int) -> list[str]:
    """Paths of ``count`` code pages spread over both shipped code sets."""
    paths: list[str] = []
    for system in ("ICD10CM", "ICD10PCS"):
        query = """query($s: CodeSystem!, $after: String) { codeIndex(system: $s, first: 1000,
                   after: $after) { totalCount edges { node { code kind billable } } } }"""
        first = (await client.post("/graphql", json={"query": query, "variables": {
            "s": system}})).json()["data"]["codeIndex"]
        total = first["totalCount"]
        if not total:
            continue
        rng = random.Random(7)
        for _ in range(count // 2):
            offset = rng.randrange(max(total - 1000, 1))
            cursor = offset_cursor(offset)
            page = (await client.post("/graphql", json={"query": query, "variables": {
                "s": system, "after": cursor}})).json()["data"]["codeIndex"]["edges"]
            billable = [e["node"]["code"] for e in page if e["node"]["billable"]]
            if billable:
                paths.append(f"/codes/{system.lower()}/{rng.choice(billable)}")
    return paths


async def member_cookie(client: httpx.AsyncClient, platform: Platform) -> None:
    """Make the client a member on the unlimited plan (its cookie then opens every page)."""
    accounts = platform.running["accounts"].client
    guest = await accounts.start_guest_session("127.0.0.1")
    email = f"bench-{time.time_ns()}@example.org"
    member = await accounts.register(guest.token, email, "a long passphrase")
    await accounts.change_plan(member.viewer.id, "pro", "bench")
    client.cookies.set("medcode_session", member.token, domain="bench.local")


async def server_times(settings: Settings, pages: int) -> dict[str, list[float]]:
    platform = Platform(settings)
    app = create_app(settings, platform)
    times: dict[str, list[float]] = {"full code page": [], "codePage query": [],
                                     "locked code page": [], "search page": []}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        base = "https://bench.local"
        async with httpx.AsyncClient(transport=transport, base_url=base) as member, \
                httpx.AsyncClient(transport=transport, base_url=base) as locked:
            paths = await sample_codes(member, pages)
            if not paths:
                raise SystemExit(f"no codes under {settings.data_dir}: run `make serve` once "
                                 "(it imports the shipped releases), or pass --data-dir")
            await member_cookie(member, platform)
            # A guest who has used its one view: every page after is the locked public part.
            await locked.get(paths[-1])
            words = ["heart attack", "broken hip", "diabetes", "appendectomy", "asthma",
                     "fracture femur", "pneumonia", "chest pain", "migraine", "hip replacement"]
            for path in paths[:10]:  # warm-up
                await member.get(path)
            print(f"measuring {len(paths)} code pages...", file=sys.stderr)
            for i, path in enumerate(paths):
                _, system, code = path.rsplit("/", 2)
                for name, client, url in (
                    ("full code page", member, path),
                    # The same page's data through the API alone: what the page adds is the
                    # difference (both reopen a page the member has unlocked already).
                    ("codePage query", member, f"{system}/{code}"),
                    ("locked code page", locked, path),
                    ("search page", member, f"/search?q={words[i % len(words)]}"),
                ):
                    started = time.perf_counter()
                    if name == "codePage query":
                        response = await client.post("/graphql", json={
                            "query": PAGE_QUERY, "operationName": "CodePage",
                            "variables": {"system": system.upper(), "code": code}})
                    else:
                        response = await client.get(url)
                    times[name].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (url, response.status_code)
    return times


def javascript_sizes() -> dict[str, int]:
    """Each script the site's pages load, gzip-compressed (GraphiQL, a developer tool
    served only in development, is not one of them)."""
    scripts = sorted({*ROOT.glob("services/*/web/static/*.js"),
                      *ROOT.glob("services/shared/web/static/*.js")})
    return {str(p.relative_to(ROOT)): len(gzip.compress(p.read_bytes(), 9)) for p in scripts}


def largest_paints(settings: Settings, paths: list[str]) -> dict[str, float]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    paints: dict[str, float] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            for path in paths:
                values = []
                for _ in range(5):
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.goto(f"http://127.0.0.1:{port}{path}")
                    values.append(float(page.evaluate(LCP_SCRIPT)))
                    context.close()
                paints[path] = statistics.median(values)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return paints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300, help="code pages to time")
    parser.add_argument("--data-dir", default=None, help="the store (default: $DATA_DIR)")
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    settings = settings.with_environ(GUEST_SESSIONS_PER_ADDRESS_PER_DAY="0")

    load = os.getloadavg()[0]
    times = asyncio.run(server_times(settings, args.pages))
    print(f"(load average {load:.1f} on {os.cpu_count()} cores when it started: on a busy "
          "machine every figure is inflated)")
    print(f"server time, in-process (target p50 <= {TARGETS['server']:.0f} ms):")
    for name, values in times.items():
        print(f"  {name:18} p50 {percentile(values, .5):6.1f} ms   p95 "
              f"{percentile(values, .95):6.1f} ms   ({len(values)} requests)")

    sizes = javascript_sizes()
    total = sum(sizes.values()) / 1000
    print(f"JavaScript, gzip -9 (target <= {TARGETS['js']:.0f} kB): {total:.1f} kB in total")
    for name, size in sizes.items():
        print(f"  {name}: {size / 1000:.1f} kB")

    paints = largest_paints(settings, ["/", "/search?q=heart+attack", "/codes/icd10cm/I21.9",
                                       "/codes/icd10pcs/0DTJ4ZZ"])
    print(f"largest contentful paint, headless Chromium, median of 5 "
          f"(target < {TARGETS['lcp']:.0f} ms):")
    for path, value in paints.items():
        print(f"  {path:28} {value:6.0f} ms")


if __name__ == "__main__":
    main()
