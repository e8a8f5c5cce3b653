"""Platform benchmark (embedded mode): prints figures, asserts nothing.

1. events appended per second (the full ICD-10-CM import, one transaction),
2. import-to-searchable time for the full release (parse + record + index),
3. searchCodes requests/s and p50/p99 latency through the real HTTP gateway at 16
   concurrent clients, next to the cost of an empty GraphQL request in the same run:
   with the search cache off (every query computed), then with it on as by default:
   each query asked once (every answer computed), then round and round.

Usage: python bench/throughput.py [--seconds 10] [--clients 16] [--data-dir DIR]

With --data-dir, a directory that already holds the imports is served as it is (steps 1
and 2 are skipped); an empty or new one is imported into first and kept.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.bootstrap import Platform  # noqa: E402
from services.lookup.client import LocalLookup  # noqa: E402
from services.lookup.events import CATALOGUE  # noqa: E402
from services.lookup.icd10cm import default_tabular_path, parse_tabular  # noqa: E402
from services.lookup.icd10pcs import import_icd10pcs  # noqa: E402
from services.lookup.importers import icd10cm_entries  # noqa: E402
from services.shared.settings import Settings  # noqa: E402


async def import_and_index(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    platform = Platform(settings)
    await platform.start()
    try:
        lookup = platform.running["lookup"].client
        assert isinstance(lookup, LocalLookup)
        started = time.perf_counter()
        tabular = parse_tabular(default_tabular_path())
        entries = icd10cm_entries(tabular)
        parsed = time.perf_counter()
        summary = await asyncio.to_thread(
            lookup.app.import_release, "ICD10CM", tabular.release, "bench", entries
        )
        recorded = time.perf_counter()
        events = summary.added + 2  # the code set's own two events
        platform.run_background()
        target = await asyncio.to_thread(CATALOGUE.last_position, lookup.app)
        consumer = platform.consumers[0]
        while consumer.position < target:
            await asyncio.sleep(0.02)
        searchable = time.perf_counter()
        found = await lookup.search_codes("I21.9", limit=1)
        assert found.items and found.items[0].code == "I21.9"
        print(f"ICD-10-CM entries parsed:     {len(entries):,} in {parsed - started:.1f} s")
        print(f"events appended per second:   {events / (recorded - parsed):,.0f} "
              f"({events:,} events in {recorded - parsed:.1f} s, one transaction)")
        print(f"indexing rate:                {target / (searchable - recorded):,.0f} events/s")
        print(f"import-to-searchable, CM:     {searchable - started:.1f} s")
        pcs = await asyncio.to_thread(import_icd10pcs, lookup.app)
        target = await asyncio.to_thread(CATALOGUE.last_position, lookup.app)
        while consumer.position < target:
            await asyncio.sleep(0.02)
        both = time.perf_counter()
        found = await lookup.search_codes("0DTJ4ZZ", limit=1)
        assert found.items and found.items[0].code == "0DTJ4ZZ"
        print(f"import-to-searchable, CM+PCS: {both - started:.1f} s "
              f"({pcs.added:,} PCS entries added)")
    finally:
        await platform.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def queries() -> list[str]:
    path = ROOT / "tests" / "relevance" / "queries.tsv"
    with path.open() as f:
        return [row["query"] for row in csv.DictReader(f, delimiter="\t")]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: cheap enough that the load generator does not
    eat the CPU the server needs on a 2-core machine (httpx costs ~2 ms a request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, await self.reader.readexactly(length)


async def load(
    port: int, bodies: list[bytes], clients: int, seconds: float | None = None
) -> tuple[float, list[float]]:
    """Clients take the bodies in turn from one shared sequence: round and round until
    ``seconds`` are up or, without ``seconds``, each body exactly once."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds if seconds is not None else math.inf
    turns = itertools.cycle(bodies) if seconds is not None else iter(bodies)

    async def client_loop() -> None:
        connection = Connection(port)
        for body in turns:
            if time.perf_counter() >= deadline:
                return
            t = time.perf_counter()
            status, answer = await connection.post("/graphql", body)
            latencies.append(time.perf_counter() - t)
            if status != 200 or b'"errors"' in answer:
                raise RuntimeError(answer[:300].decode())

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready")


SEARCH = (
    "query($q: String!) { searchCodes(query: $q, first: 10) "
    "{ totalCount edges { node { code title } } } }"
)


async def measure(port: int, seconds: float, clients: int, runs: list[str]) -> None:
    """An empty request, then searchCodes once per label in ``runs``: "once" asks each
    query exactly once (all of them new to the server), any other label runs ``seconds``."""
    await wait_ready(port)
    bodies = [json.dumps({"query": SEARCH, "variables": {"q": q}}).encode() for q in queries()]
    empty = [json.dumps({"query": "{ __typename }"}).encode()]
    await load(port, [bodies[0]], clients, 2)  # warm-up: connections, the spelling vocabulary
    empty_rps, empty_lat = await load(port, empty, clients, seconds)
    print(f"empty request ({clients} clients):            {empty_rps:,.0f} req/s, "
          f"p50 {pct(empty_lat, 50):.1f} ms, p99 {pct(empty_lat, 99):.1f} ms")
    for label in runs:
        rps, lat = await load(port, bodies, clients, None if label == "once" else seconds)
        described = RUNS[label]
        print(f"searchCodes, {described:<26} {rps:,.0f} req/s, "
              f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
              f"mean {statistics.mean(lat) * 1000:.1f} ms over {len(lat):,} requests")


RUNS = {
    "uncached": "no cache:",
    "once": "cache, each query once:",
    "warm": "cache, then:",
}


def serve_and_load(data_dir: Path, seconds: float, clients: int) -> None:
    """Two servers in turn: without the search cache (every search computed: the cost of
    a query never asked before), then as configured by default, where each query is first
    asked once (every answer computed and kept) and then round and round for ``seconds``."""
    print(f"({len(queries())} distinct queries from tests/relevance/queries.tsv, in turn)")
    for cache, runs in (("0", ["uncached"]), (None, ["once", "warm"])):
        port = free_port()
        env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port),
               "MEDCODE_ENV": "production"}
        if cache is not None:
            env["SEARCH_CACHE_ENTRIES"] = cache
        server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            asyncio.run(measure(port, seconds, clients, runs))
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--seconds", type=float, default=10)
    args.add_argument("--clients", type=int, default=16)
    args.add_argument("--data-dir", type=Path)
    options = args.parse_args()
    if options.data_dir:
        if not (options.data_dir / "lookup.sqlite").exists():
            asyncio.run(import_and_index(options.data_dir))
        serve_and_load(options.data_dir, options.seconds, options.clients)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        asyncio.run(import_and_index(data_dir))
        serve_and_load(data_dir, options.seconds, options.clients)


if __name__ == "__main__":
    main()
