"""The lookup service's search projection: code events in, index documents out."""

from __future__ import annotations

from typing import Any

from services.lookup.lexicon import default_lexicon
from services.lookup.search.documents import CodeDocument, code_doc_id
from services.shared.bus import Delivery
from services.shared.search.cache import SearchCache
from services.shared.search.live import LiveWriter
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
    """Keeps the live search index (or one pinned version, when rebuilding) in step.

    Skipping an event is safe here (``skip_safe``): the index is derived data, a skipped
    code only goes missing from search until the cause is fixed and the index rebuilt
    (``medcode projections rebuild search``), and the dead letter names it meanwhile.
    """

    skip_safe = True

    def __init__(
        self,
        catalog: SearchCatalog[CodeDocument],
        name: str = "search",
        pinned: SearchIndex[CodeDocument] | None = None,
        cache: SearchCache[Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.name = name
        self.pinned = pinned
        self.cache = cache  # answers from the index written here: forgotten on each write
        self.writer = LiveWriter(catalog, pinned)

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return await self.writer.checkpoint(self.name, source)

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        latest: dict[str, CodeDocument | None] = {}
        for delivery in deliveries:
            envelope = delivery.envelope
            payload = envelope.payload
            if envelope.type in ("CodeAdded", "CodeRevised"):
                doc = document(payload, envelope.aggregate_version)
                latest[doc.doc_id] = doc
            elif envelope.type == "CodeDeleted":
                latest[code_doc_id(payload["system"], payload["code"])] = None
        await self._write(source, IndexChange(
            upserts=[d for d in latest.values() if d is not None],
            deletions=[doc_id for doc_id, d in latest.items() if d is None],
        ), deliveries[-1])

    async def skip(self, source: str, delivery: Delivery) -> None:
        """Record the checkpoint of ``delivery`` without its effect (a dead letter)."""
        await self._write(source, IndexChange(), delivery)

    async def _write(self, source: str, change: IndexChange[CodeDocument],
                     last: Delivery) -> None:
        await self.writer.write(
            change, Checkpoint(self.name, source, last.envelope.position, last.cursor))
        if self.cache is not None:
            self.cache.changed()
