"""Which code systems hold data: read by one search at a time, and only by a search that
asks for systems."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from services.lookup.application import CodeSets
from services.lookup.client import SYSTEMS, LocalLookup
from services.lookup.search.documents import CODES
from services.shared.search.embedded import TantivyCatalog
from services.shared.settings import Settings


async def test_loaded_systems_are_read_once_for_searches_under_way(tmp_path: Path) -> None:
    app = CodeSets(env=Settings(data_dir=tmp_path).event_store_env("lookup"))
    catalog = TantivyCatalog(tmp_path / "search", CODES)
    lookup = LocalLookup(app, catalog)
    reads: list[str] = []
    releases = app.releases

    def counted(system: str) -> Any:
        reads.append(system)
        return releases(system)

    app.releases = counted  # type: ignore[method-assign]
    try:
        await lookup.search_codes("asthma")  # no systems asked for: none to tell apart
        assert reads == []
        pages = await asyncio.gather(
            *(lookup.search_codes("asthma", systems=["CPT"]) for _ in range(8))
        )
        assert all(page.unloaded == ["CPT"] for page in pages)
        assert sorted(reads) == sorted(SYSTEMS)  # once, for the eight
    finally:
        await catalog.close()
