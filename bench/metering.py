"""Metering benchmark (embedded mode, gateway ASGI app in-process): prints, asserts nothing.

What does metering add to one ``codePage`` request? The same query over the same
synthetic ICD-10-CM pages, measured one request at a time (latency, not throughput):

  baseline      a platform without the accounts product: nothing is metered
  anonymous     metered, no token: no store access at all, the page comes back locked
  re-open       metered, a page the viewer already unlocked: session + viewer reads
  first open    metered, a new page for an unlimited (pro) viewer: reads + one write
  exhausted     metered, a new page with no views left: reads, locked, nothing written

The five cases run interleaved, request by request, so that drift in machine load
affects them alike. Each metered platform has its own data directory.

Usage: python bench/metering.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app  # noqa: E402
from gateway.bootstrap import Platform  # noqa: E402
from services.lookup.application import CodeSets  # noqa: E402
from services.lookup.domain import CodeEntry  # noqa: E402
from services.lookup.events import CATALOGUE  # noqa: E402
from services.shared.product import discover  # noqa: E402
from services.shared.settings import Settings  # noqa: E402

PAGE = """query($code: String!) { codePage(system: ICD10CM, code: $code) {
  ... on CodePage { code locked remainingViews hierarchy { code } notes { kind } } } }"""


def release(count: int) -> list[CodeEntry]:
    def entry(code: str, kind: str, billable: bool, parent: str | None) -> CodeEntry:
        return CodeEntry("ICD10CM", code, f"Synthetic {code}", kind, billable, parent, "1")

    codes = [f"A{n // 100:02d}.{n % 100:02d}" for n in range(count)]
    categories = sorted({c[:3] for c in codes})
    return [entry("1", "chapter", False, None), entry("A00-A99", "block", False, "1"),
            *(entry(c, "category", False, "A00-A99") for c in categories),
            *(entry(c, "code", True, c[:3]) for c in codes)]


@asynccontextmanager
async def served(
    settings: Settings, names: set[str]
) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    platform = Platform(settings, [p for p in discover() if p.name in names])
    app = create_app(settings, platform)
    async with app.router.lifespan_context(app):
        # Let the search projection finish indexing first: it would compete for the CPU.
        lookup = platform.running["lookup"]
        target = await asyncio.to_thread(CATALOGUE.last_position, lookup.app)
        while any(c.position < target for c in platform.consumers if c.source == "lookup"):
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client, platform


async def post(client: httpx.AsyncClient, query: str, token: str | None = None,
               **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers=headers)
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def timed(client: httpx.AsyncClient, code: str, token: str | None,
                check: Callable[[dict[str, Any]], bool], into: list[float]) -> None:
    started = time.perf_counter()
    page = (await post(client, PAGE, token, code=code))["codePage"]
    into.append((time.perf_counter() - started) * 1000)
    assert check(page), page


def line(label: str, timings: list[float], baseline: list[float] | None) -> str:
    p50 = statistics.median(timings)
    p99 = statistics.quantiles(timings, n=100)[98]
    text = f"{label:<12} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
    if baseline is not None:
        b50, b99 = statistics.median(baseline), statistics.quantiles(baseline, n=100)[98]
        text += f"   metering adds p50 {p50 - b50:+6.2f} ms, p99 {p99 - b99:+6.2f} ms"
    return text


def unlocked(page: dict[str, Any]) -> bool:
    return not page["locked"] and page["hierarchy"] is not None


def locked(page: dict[str, Any]) -> bool:
    return bool(page["locked"]) and page["hierarchy"] is None


async def main(requests: int) -> None:
    codes = [f"A{n // 100:02d}.{n % 100:02d}" for n in range(3 * requests)]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Settings(data_dir=Path(tmp) / "plain")
        metered = Settings(data_dir=Path(tmp) / "metered").with_environ(
            LOGIN_FAILURE_DELAY_MS="0")
        for settings in (plain, metered):
            lookup = CodeSets(env=settings.event_store_env("lookup"))
            lookup.import_release("ICD10CM", "bench", "synthetic", release(len(codes)))
            lookup.close()

        async with served(plain, {"lookup"}) as (base, _), \
                served(metered, {"lookup", "accounts"}) as (client, platform):
            member = (await post(client, """mutation { register(input: {email:
                "bench@example.org", password: "correct horse battery"}) {
                ... on SessionPayload { token viewer { id } } } }"""))["register"]
            # A plan change as a payment webhook would drive it: through the client.
            await platform.running["accounts"].client.change_plan(
                member["viewer"]["id"], "pro", "bench", None)
            guest = (await post(client, "mutation { startGuestSession { token } }"))[
                "startGuestSession"]["token"]
            await post(client, PAGE, guest, code=codes[0])  # spends the guest's one view

            timings: dict[str, list[float]] = {
                k: [] for k in ("baseline", "anonymous", "re-open", "first open", "exhausted")}
            for n in range(-20, requests):  # 20 warm-up rounds, not recorded
                sink = {k: ([] if n < 0 else v) for k, v in timings.items()}
                i = max(n, 0)
                await timed(base, codes[i], None, unlocked, sink["baseline"])
                await timed(client, codes[i], None, locked, sink["anonymous"])
                await timed(client, codes[requests + i], member["token"], unlocked,
                            sink["first open"])
                await timed(client, codes[requests + i], member["token"], unlocked,
                            sink["re-open"])
                await timed(client, codes[2 * requests + i], guest, locked, sink["exhausted"])

    print(f"codePage latency over {requests} interleaved rounds (embedded, in-process ASGI, "
          "one request at a time):")
    baseline = timings.pop("baseline")
    print(line("baseline", baseline, None))
    for label, values in timings.items():
        print(line(label, values, baseline))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
