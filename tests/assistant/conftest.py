"""A real lookup store for CasePilot's tests: the shipped ICD-10-CM and ICD-10-PCS
releases imported (with the GEMs) and indexed for search once per run, the way the
platform does it. Each test gets its own client over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.lookup.application import CodeSets
from services.lookup.client import LocalLookup
from services.lookup.events import CATALOGUE
from services.lookup.icd10pcs import import_icd10pcs
from services.lookup.importers import import_icd10cm
from services.lookup.projections import SearchProjection
from services.shared.consumer import Consumer
from services.shared.log_bus import LogBus
from services.shared.search.sqlite import SQLiteCatalog


async def index_store(app: CodeSets, path: Path) -> None:
    """Run the search projection over the whole store into the index at ``path``."""
    bus = LogBus(poll_interval=0.05)
    bus.register(app, CATALOGUE)
    catalog = SQLiteCatalog(path)
    await Consumer(SearchProjection(catalog), bus, CATALOGUE.source).run_until(
        CATALOGUE.last_position(app), timeout=900)
    await catalog.close()


@pytest.fixture(scope="session")
def lookup_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[CodeSets, Path]:
    """The event store and the search index of the shipped releases (about a minute),
    in a folder laid out as the embedded platform's DATA_DIR."""
    root = tmp_path_factory.mktemp("assistant-lookup")
    app = CodeSets(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(root / "lookup.sqlite")})
    import_icd10cm(app)
    import_icd10pcs(app)
    asyncio.run(index_store(app, root / "search.sqlite"))
    return app, root / "search.sqlite"


@pytest.fixture
async def lookup(lookup_store: tuple[CodeSets, Path]) -> AsyncIterator[LocalLookup]:
    app, index = lookup_store
    catalog = SQLiteCatalog(index)
    yield LocalLookup(app, catalog)
    await catalog.close()
