"""The distributed shape with a process per part: the lookup and accounts services each
run their own HTTP API, a worker runs the relays and consumers, and the gateway reaches
the services only through their HTTP clients."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.shared.settings import Settings
from tests.conftest import chapters
from tests.e2e.helpers import PAGE, SEARCH
from tests.e2e.test_distributed import indexed_position, process_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVICE_TOKEN = "test-service-token"


# Each launched process writes its output to a file; stop_all prints the end of it,
# which pytest shows only when a test fails (a process that never came up says why).
_LOGS: dict[subprocess.Popen[bytes], tuple[str, Path]] = {}


def launch(settings: Settings, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    env = {**process_env(settings), "MEDCODE_SERVICE_TOKEN": SERVICE_TOKEN, **extra}
    logs = settings.data_dir / "process-logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{'-'.join(args)}-{len(_LOGS)}.log"
    with path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args], env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )
    _LOGS[process] = (" ".join(args), path)
    return process


@pytest.fixture
def processes(distributed_settings: Settings) -> Iterator[tuple[str, Settings, list[str]]]:
    settings = distributed_settings
    lookup_port, accounts_port, gateway_port = free_port(), free_port(), free_port()
    started = [
        launch(settings, "worker"),
        launch(settings, "service", "lookup", PORT=str(lookup_port)),
        launch(settings, "service", "accounts", PORT=str(accounts_port)),
        launch(
            settings, "serve", PORT=str(gateway_port),
            MEDCODE_LOOKUP_URL=f"http://127.0.0.1:{lookup_port}",
            MEDCODE_ACCOUNTS_URL=f"http://127.0.0.1:{accounts_port}",
        ),
    ]
    try:
        services = [f"http://127.0.0.1:{port}/healthz" for port in (lookup_port, accounts_port)]
        yield f"http://127.0.0.1:{gateway_port}", settings, services
    finally:
        stop_all(started)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then kill those still running after 10 seconds."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    for process in processes:
        name, path = _LOGS.pop(process, ("", Path()))
        if path.is_file():
            tail = path.read_text(errors="replace").splitlines()[-30:]
            print(f"--- {name} (exit {process.returncode}), last lines of {path}:", *tail,
                  sep="\n")


async def until_ok(client: httpx.AsyncClient, url: str, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def test_gateway_reaches_services_over_http(
    processes: tuple[str, Settings, list[str]], icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    base, settings, services = processes
    release, entries = icd10cm_release
    app = CodeSets(env=settings.event_store_env("lookup"))
    try:
        await run_in_threadpool(app.import_release, "ICD10CM", release, "test",
                                chapters(entries, "4", "9"))
        target = await run_in_threadpool(CATALOGUE.last_position, app)
    finally:
        app.close()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for url in [*services, f"{base}/readyz"]:
            await until_ok(client, url)
        async with asyncio.timeout(120):
            while await indexed_position(settings) < target:
                await asyncio.sleep(0.2)

        async def ask(query: str, token: str | None = None, **variables: object) -> dict:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

        found = await ask(SEARCH, q="i219")
        assert "errors" not in found, found
        assert found["data"]["searchCodes"]["edges"][0]["node"]["code"] == "I21.9"
        guest = (await ask("mutation { startGuestSession { token } }"))["data"]
        token = guest["startGuestSession"]["token"]
        page = (await ask(PAGE, token, system="ICD10CM", code="e1165"))["data"]["codePage"]
        assert (page["code"], page["locked"]) == ("E11.65", False)
        assert [h["code"] for h in page["hierarchy"]] == ["4", "E08-E13", "E11", "E11.6"]
        second = (await ask(PAGE, token, system="ICD10CM", code="I10"))["data"]["codePage"]
        assert second["locked"] is True  # the guest's one view went to E11.65
        missing = (await ask(PAGE, token, system="ICD10CM", code="Q99.99"))["data"]
        assert missing["codePage"]["__typename"] == "CodeNotFound"

        # A service's own API answers only holders of the service token.
        accounts_api = services[1].removesuffix("/healthz")
        unauthorised = await client.post(f"{accounts_api}/rpc/change_plan", json={
            "viewer_id": "x", "plan": "pro", "reason": "free upgrade"})
        assert unauthorised.status_code == 401
