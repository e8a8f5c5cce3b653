"""The distributed mode end to end: PostgreSQL event store, Kafka-protocol bus (Tansu),
OpenSearch-protocol index (osmem), and the gateway; plus a consumer killed mid-import."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.lookup.projections import SearchProjection, document
from services.lookup.runtime import search_catalog
from services.lookup.search.documents import CodeDocument
from services.shared.settings import Settings
from tests.conftest import chapters, gateway
from tests.e2e.helpers import PAGE, SEARCH, graphql, import_entries

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
async def served(
    distributed_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    release, entries = icd10cm_release
    async for client, platform in gateway(distributed_settings):
        await import_entries(platform, release, chapters(entries, "4", "9"))
        yield client, platform


async def test_search_and_pages_through_kafka_and_opensearch(served: tuple) -> None:
    client, platform = served
    assert platform.relays, "distributed mode relays events to Kafka"
    body = await graphql(client, SEARCH, q="i219")
    assert body["data"]["searchCodes"]["edges"][0]["node"]["code"] == "I21.9"
    words = await graphql(client, SEARCH, q="type 2 diabetes hyperglycemia")
    assert words["data"]["searchCodes"]["edges"][0]["node"]["code"] == "E11.65"
    # A search box's keystroke: "pe" begins a word ("peripheral": terms say "diabetic
    # peripheral neuropathy"), since no entry holds the abbreviation with "diabetes" (a
    # count plan on OpenSearch); sent whole, it is "pe".
    titles = {}
    for typing in (True, False):
        body = await graphql(client, TYPED, q="diabetes pe", typing=typing)
        titles[typing] = [e["node"]["title"].lower() for e in body["data"]["searchCodes"]["edges"]]
    assert "neuropathy" in titles[True][0], titles[True]
    assert "neuropathy" not in titles[False][0], titles[False]
    page = (await graphql(client, PAGE, system="ICD10CM", code="e1165"))["data"]["codePage"]
    assert page["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    missing = (await graphql(client, PAGE, system="ICD10CM", code="Q99.99"))["data"]["codePage"]
    assert missing["__typename"] == "CodeNotFound"


TYPED = """query($q: String!, $typing: Boolean!) {
  searchCodes(query: $q, typing: $typing) { edges { node { title } } }
}"""


def expected_documents(app: CodeSets) -> list[CodeDocument]:
    """What the index must hold: the event log folded, independently of the consumer."""
    latest: dict[str, CodeDocument | None] = {}
    for envelope in CATALOGUE.iterate(app):
        if envelope.type in ("CodeAdded", "CodeRevised"):
            doc = document(envelope.payload, envelope.aggregate_version)
            latest[doc.doc_id] = doc
        elif envelope.type == "CodeDeleted":
            latest[f"{envelope.payload['system']}:{envelope.payload['code']}"] = None
    return sorted((d for d in latest.values() if d), key=lambda d: d.doc_id)


def process_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a medcode process use these distributed settings."""
    return {
        **os.environ,
        "MEDCODE_MODE": "distributed",
        "POSTGRES_DBNAME": settings.postgres_dbname,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_IDEMPOTENCE": "false",
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "OPENSEARCH_URL": settings.opensearch_url,
        **settings.environ,  # products' own settings (lookup's SEARCH_ALIAS)
        "DATA_DIR": str(settings.data_dir),
    }


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker"], env=process_env(settings),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def indexed_position(settings: Settings) -> int:
    catalog = search_catalog(settings)
    try:
        stored = await SearchProjection(catalog).checkpoint("lookup")
        return stored.position if stored else 0
    finally:
        await catalog.close()


async def test_consumer_killed_mid_import_resumes_without_loss_or_duplicates(
    distributed_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    settings = distributed_settings
    release, entries = icd10cm_release
    app = CodeSets(env=settings.event_store_env("lookup"))
    worker = start_worker(settings)
    try:
        await run_in_threadpool(
            app.import_release, "ICD10CM", release, "test", chapters(entries, "4", "9", "13")
        )
        target = await run_in_threadpool(CATALOGUE.last_position, app)
        async with asyncio.timeout(120):
            while not 0 < (await indexed_position(settings)) < target:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                await asyncio.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # no clean shutdown: mid-batch, mid-write
        worker.wait(10)
        killed_at = await indexed_position(settings)
        assert killed_at < target

        worker = start_worker(settings)
        async with asyncio.timeout(180):
            while await indexed_position(settings) < target:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                await asyncio.sleep(0.2)

        catalog = search_catalog(settings)
        try:
            index = await catalog.live()
            held = await index.documents()
            expected = await run_in_threadpool(expected_documents, app)
            assert len(held) == len(expected) == await index.count()
            assert [asdict(d) for d in held] == [asdict(d) for d in expected]
        finally:
            await catalog.close()
    finally:
        worker.kill()
        worker.wait(10)
        app.close()
