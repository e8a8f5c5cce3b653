"""``medcode serve`` with two serving processes behind one port: ``/metrics`` reports the
whole server (every process's requests), whichever process answers the scrape; the
supervisor forks them (gateway/supervisor.py), replaces one that dies and stops them
with itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import multiprocess

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.shared.settings import Settings
from tests.e2e.test_processes import free_port, stop_all, until_ok

pytestmark = [pytest.mark.e2e]

PING = "query Ping { __typename }"
ROUNDS, PER_ROUND = 10, 40  # at most 400 requests, in rounds of 40 at once


def small_releases(settings: Settings) -> None:
    """A release of each shipped code set, so that serving starts without importing the
    real ones (minutes of work this test has no need for)."""
    lookup = CodeSets(env=settings.event_store_env("lookup"))
    lookup.import_release("ICD10CM", "test", "synthetic", [
        CodeEntry("ICD10CM", "1", "Synthetic chapter", "chapter", False, None, "1"),
        CodeEntry("ICD10CM", "A00", "Synthetic category", "category", True, "1", "1")])
    lookup.import_release("ICD10PCS", "test", "synthetic", [
        CodeEntry("ICD10PCS", "0", "Synthetic section", "section", False, None, "0")])


def pings_by_process(directory: Path) -> dict[int, float]:
    """How many Ping operations each serving process recorded (its own files)."""
    counts: dict[int, float] = {}
    for path in directory.glob("histogram_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for family in multiprocess.MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if (sample.name == "medcode_graphql_request_seconds_count"
                        and sample.labels.get("operation") == "Ping"):
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


def scraped_pings(text: str) -> float:
    found = re.findall(r'^medcode_graphql_request_seconds_count\{operation="Ping",'
                       r'type="query"\} (\S+)$', text, re.MULTILINE)
    assert len(found) == 1, text
    return float(found[0])


async def serve_two(
    settings: Settings, *, session: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """``medcode serve`` with two serving processes, once it answers: it and its address;
    with ``session``, as a terminal's foreground job (a process group of its own)."""
    await asyncio.to_thread(small_releases, settings)
    port = free_port()
    env = {**os.environ, "MEDCODE_MODE": "embedded", "DATA_DIR": str(settings.data_dir),
           "PORT": str(port), "MEDCODE_WORKERS": "2", "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "gateway.cli", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=session)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await until_ok(client, f"{base}/healthz", timeout=180)
    except BaseException:
        stop_all([server])
        raise
    return server, base


def serving_processes(supervisor: int) -> set[int]:
    return {int(pid) for pid in
            Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def test_metrics_count_every_serving_processes_requests(tmp_path: Path) -> None:
    settings = Settings(mode="embedded", data_dir=tmp_path / "var")
    server, base = await serve_two(settings)
    shared = settings.data_dir / "prometheus"
    try:
        sent = 0
        # A fresh connection per request, many at once, so that both processes answer;
        # until each has answered some (bounded: ROUNDS rounds).
        async with httpx.AsyncClient(base_url=base, timeout=60,
                                     limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(ROUNDS):
                answers = await asyncio.gather(*(
                    client.post("/graphql", json={"query": PING, "operationName": "Ping"})
                    for _ in range(PER_ROUND)))
                assert all(a.status_code == 200 for a in answers)
                sent += len(answers)
                if len([n for n in pings_by_process(shared).values() if n]) >= 2:
                    break
            by_process = pings_by_process(shared)
            assert len([n for n in by_process.values() if n]) == 2, by_process
            assert sum(by_process.values()) == sent
            # Every scrape, whichever process answers it, counts all of them.
            for _ in range(6):
                text = (await client.get("/metrics")).text
                assert scraped_pings(text) == sent
        for series in ("medcode_search_seconds", "medcode_metering_outcomes",
                       "medcode_relay_lag", "medcode_relay_failures", "medcode_consumer_lag",
                       "medcode_consumer_failures", "medcode_outbox_depth"):
            assert re.search(rf"^# TYPE {series}(_total)? ", text, re.MULTILINE), series
        assert 'medcode_consumer_failures_total{consumer="search:lookup"} 0.0' in text
        # Having prepared the products, `medcode serve` became the supervisor.
        cmdline = await asyncio.to_thread(Path(f"/proc/{server.pid}/cmdline").read_bytes)
        supervisor = cmdline.split(b"\0")
        assert b"gateway.supervisor" in supervisor, supervisor
    finally:
        stop_all([server])
    assert not shared.exists() or not list(shared.glob("gauge_live*")), (
        "processes that stopped still count in the live gauges")


async def ping_once(port: int) -> None:
    """One Ping on a connection of its own, kept open until answered."""
    body = json.dumps({"query": PING, "operationName": "Ping"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
        assert b'"errors"' not in await reader.readexactly(length)
    finally:
        writer.close()


async def test_connections_are_shared_evenly_between_the_serving_processes(
    tmp_path: Path,
) -> None:
    """The supervisor hands each connection to the next process in turn (gateway.handoff):
    16 clients connecting at once are served 8 by each, where the kernel's hash of their
    addresses (a listening socket per process) split them as unevenly as 4 and 12."""
    settings = Settings(mode="embedded", data_dir=tmp_path / "var")
    server, base = await serve_two(settings)
    shared = settings.data_dir / "prometheus"
    port = int(base.rsplit(":", 1)[1])
    try:
        for _ in range(600):  # until both have started and said they serve
            await asyncio.gather(*(ping_once(port) for _ in range(4)))
            if len([n for n in pings_by_process(shared).values() if n]) == 2:
                break
        before = pings_by_process(shared)
        assert len(before) == 2, before
        await asyncio.gather(*(ping_once(port) for _ in range(16)))  # 16 at once
        after = pings_by_process(shared)
        assert sorted(after[pid] - before[pid] for pid in before) == [8, 8], (before, after)
    finally:
        stop_all([server])


async def test_a_serving_process_that_dies_is_replaced_and_all_stop_with_the_server(
    tmp_path: Path,
) -> None:
    server, base = await serve_two(Settings(mode="embedded", data_dir=tmp_path / "var"))
    try:
        first = await asyncio.to_thread(serving_processes, server.pid)
        assert len(first) == 2, first
        # Forked from the supervisor (which imported the app for them), not started anew.
        commands = await asyncio.to_thread(
            lambda: {Path(f"/proc/{pid}/cmdline").read_bytes() for pid in {server.pid, *first}})
        assert len(commands) == 1, commands
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        for _ in range(600):  # the supervisor waits a few seconds before forking anew
            now = await asyncio.to_thread(serving_processes, server.pid)
            if len(now) == 2 and killed not in now:
                break
            await asyncio.sleep(0.05)
        assert len(now) == 2 and killed not in now and max(first) in now, (first, now)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            answers = await asyncio.gather(*(
                client.post("/graphql", json={"query": PING}) for _ in range(20)))
        assert all(a.status_code == 200 for a in answers)
        server.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 60) == 0
        assert not any(alive(pid) for pid in now), "a serving process outlived the server"
    finally:
        stop_all([server])


async def gone(pids: set[int]) -> bool:
    for _ in range(600):
        if not any(alive(pid) for pid in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_ctrl_c_stops_the_server_cleanly_and_its_processes_end_with_it(
    tmp_path: Path,
) -> None:
    # Ctrl-C: SIGINT to the terminal's whole foreground group. The serving processes have
    # groups of their own, so each stops once, on the supervisor's word, running its app's
    # shutdown (which removes its live gauges).
    settings = Settings(mode="embedded", data_dir=tmp_path / "var")
    server, _ = await serve_two(settings, session=True)
    try:
        children = await asyncio.to_thread(serving_processes, server.pid)
        os.killpg(server.pid, signal.SIGINT)
        assert await asyncio.to_thread(server.wait, 60) == 0
        assert await gone(children)
        assert not list((settings.data_dir / "prometheus").glob("gauge_live*"))
    finally:
        stop_all([server])
    # A supervisor killed outright takes its serving processes with it.
    server, _ = await serve_two(Settings(mode="embedded", data_dir=tmp_path / "var2"))
    try:
        children = await asyncio.to_thread(serving_processes, server.pid)
        server.kill()
        await asyncio.to_thread(server.wait, 30)
        assert await gone(children), "serving processes outlived their supervisor"
    finally:
        stop_all([server])
