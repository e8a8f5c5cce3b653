"""Fixtures shared by the suite: real servers, settings for both modes, a gateway client."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.bootstrap import Platform
from services.lookup.domain import CodeEntry
from services.lookup.icd10cm import default_tabular_path, parse_tabular
from services.lookup.importers import icd10cm_entries
from services.shared.settings import Settings
from tests.faults.seed import banner
from tests.servers.kafka import start_tansu
from tests.servers.opensearch import start_opensearch
from tests.servers.postgres import fresh_database
from tests.servers.smtp import SmtpSink, free_port

# Every platform a test starts (and every medcode process it spawns) listens for consult
# mail; on a free port, so that runs in parallel (and a real server on 2525) never clash.
os.environ.setdefault("SMTP_PORT", "0")


def pytest_report_header() -> str:
    return banner()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(banner())


@pytest.fixture(scope="session")
def icd10cm_release() -> tuple[str, list[CodeEntry]]:
    """The real April 2026 release, parsed once per run."""
    tabular = parse_tabular(default_tabular_path())
    return tabular.release, icd10cm_entries(tabular)


def chapters(entries: list[CodeEntry], *numbers: str) -> list[CodeEntry]:
    return [e for e in entries if e.chapter in numbers]


@pytest.fixture
async def stack(tmp_path: Path, icd10cm_release: tuple[str, list[CodeEntry]]
                ) -> AsyncIterator[Any]:
    """A small real CasePilot (tests/casepilot.py: ICD-10-CM chapter 4, accounts)."""
    from tests.casepilot import casepilot

    async with casepilot(tmp_path, icd10cm_release) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[str]:
    with fresh_database() as name:
        yield name


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    with start_tansu() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def opensearch() -> Iterator[str]:
    with start_opensearch() as url:
        yield url


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free port for the platform's consult mail listener (SMTP_PORT)."""
    port = free_port()
    monkeypatch.setenv("SMTP_PORT", str(port))
    return port


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(mode="embedded", data_dir=tmp_path / "var")


@pytest.fixture
def distributed_settings(
    tmp_path: Path, kafka: str, opensearch: str
) -> Iterator[Settings]:
    """Distributed mode on a fresh database, topics and index of its own."""
    suffix = secrets.token_hex(3)
    with fresh_database() as dbname:
        yield Settings(
            mode="distributed",
            data_dir=tmp_path / "var",
            postgres_dbname=dbname,
            kafka_bootstrap_servers=kafka,
            kafka_idempotence=False,  # the Tansu broker has no idempotent producer
            opensearch_url=opensearch,
            environ={"SEARCH_ALIAS": f"medcode-codes-{suffix}"},  # lookup's own setting
            kafka_topic_prefix=f"medcode-{suffix}",
        )


def production(settings: Settings) -> Settings:
    """Production refuses to start without a server secret: give it one."""
    return replace(settings, environment="production", secret_key=secrets.token_urlsafe(32))


async def gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    platform = Platform(settings)
    app = create_app(settings, platform)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, platform
