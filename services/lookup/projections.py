"""The lookup service's search projection: code events in, index documents out."""

from __future__ import annotations

from typing import Any

from services.lookup.lexicon import default_lexicon
from services.lookup.search.documents import CodeDocument
from services.shared.bus import Delivery
from services.shared.consumer import ProjectionMoved
from services.shared.search.cache import SearchCache
from services.shared.search.model import (
    Checkpoint,
    IndexChange,
    SearchCatalog,
    SearchIndex,
)


def document(payload: dict[str, Any], version: int) -> CodeDocument:
    notes = payload.get("notes") or {}
    # Inclusion terms are the tabular's own synonyms, PCS index entries the index's; the
    # lexicon adds lay words and shorthand. Searchable, never shown as titles.
    terms = default_lexicon().terms(
        payload["system"],
        payload["title"],
        tuple(notes.get("inclusion_terms", ())),
        payload.get("details") or {},
    )
    return CodeDocument(
        system=payload["system"],
        code=payload["code"],
        title=payload["title"],
        billable=bool(payload["billable"]),
        kind=payload["kind"],
        chapter=payload.get("chapter"),
        parent=payload.get("parent"),
        terms=terms,
        version=version,
    )


class SearchProjection:
    """Keeps the live search index (or one pinned version, when rebuilding) in step."""

    def __init__(
        self,
        catalog: SearchCatalog,
        name: str = "search",
        pinned: SearchIndex | None = None,
        cache: SearchCache[Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.name = name
        self.pinned = pinned
        self.cache = cache  # answers from the index written here: forgotten on each write
        self._current: SearchIndex | None = None

    async def _target(self) -> SearchIndex:
        if self.pinned is not None:
            return self.pinned
        live = await self.catalog.live()
        moved = self._current is not None and live.name != self._current.name
        self._current = live
        if moved:
            raise ProjectionMoved(live.name)
        return live

    async def checkpoint(self, source: str) -> Checkpoint | None:
        self._current = None
        return await (await self._target()).checkpoint(self.name, source)

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        latest: dict[str, CodeDocument | None] = {}
        for delivery in deliveries:
            envelope = delivery.envelope
            payload = envelope.payload
            if envelope.type in ("CodeAdded", "CodeRevised"):
                doc = document(payload, envelope.aggregate_version)
                latest[doc.doc_id] = doc
            elif envelope.type == "CodeDeleted":
                latest[f"{payload['system']}:{payload['code']}"] = None
        change = IndexChange(
            upserts=[d for d in latest.values() if d is not None],
            deletions=[doc_id for doc_id, d in latest.items() if d is None],
        )
        last = deliveries[-1]
        await (await self._target()).write(
            change, Checkpoint(self.name, source, last.envelope.position, last.cursor)
        )
        if self.cache is not None:
            self.cache.changed()
